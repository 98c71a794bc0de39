import { describe, expect, it } from 'vitest';
import {
  installIntentPath, parseInstallIntent, planInstallRepair, removeServicesCommand, removeServicesFailures, renderInstallIntent, type InstallIntent,
} from '../../../src/plan/install-intent.js';
import { emptyReleaseState, type InstalledVersion } from '../../../src/plan/release-state.js';

const intent: InstallIntent = {
  schema: 1, app: 'shop', version: 'v3', command: 'depl buildinst --version v3', by: 'ana@laptop', at: '2026-11-30T06:00:00.000Z', pid: 4242,
  services: ['shop-v3-web', 'shop-v3-worker'], redeploy: false,
};
const installed = (label: string, services: string[]): InstalledVersion => ({ label, createdAt: '2026-11-30T06:00:00Z', services });

describe('install intent', () => {
  it('lives next to the release document and reads back what was written', () => {
    expect(installIntentPath('shop', '/var/lib/depl')).toBe('/var/lib/depl/shop/installing.json');
    expect(parseInstallIntent(renderInstallIntent(intent))).toEqual({ ok: true, intent });
  });

  it('refuses what is not an intent, saying what is wrong', () => {
    expect(parseInstallIntent('{')).toEqual({ ok: false, problem: 'not JSON' });
    const missing = parseInstallIntent(JSON.stringify({ ...intent, services: undefined }));
    expect(missing.ok).toBe(false);
    expect(!missing.ok && missing.problem).toMatch(/^services: /);
  });

  it('removes every service labelled with the version, taking it off the edge when the swarm lists it', () => {
    const repair = planInstallRepair(intent, [installed('v1', ['shop-v1-web']), installed('v3', ['shop-v3-web', 'shop-v3-extra'])], emptyReleaseState('shop'));
    expect(repair).toEqual({
      action: 'remove', version: 'v3', fromEdge: true,
      services: ['shop-v3-extra', 'shop-v3-web', 'shop-v3-worker'],
      why: 'an interrupted `depl buildinst --version v3` (ana@laptop, 2026-11-30T06:00:00.000Z) was installing version v3 and never finished; removing it (shop-v3-extra, shop-v3-web, shop-v3-worker)',
    });
  });

  it('a version with no service yet only needs the intent dropped from the edge side', () => {
    expect(planInstallRepair(intent, [installed('v1', ['shop-v1-web'])], emptyReleaseState('shop'))).toMatchObject({ action: 'remove', fromEdge: false, services: ['shop-v3-web', 'shop-v3-worker'] });
  });

  it('never removes what serves traffic or is the rollback target', () => {
    const state = emptyReleaseState('shop');
    expect(planInstallRepair(intent, [], { ...state, live: 'v3' })).toMatchObject({ action: 'keep', why: expect.stringMatching(/which is live; it stays$/) });
    expect(planInstallRepair(intent, [], { ...state, live: 'v1', canary: { version: 'v3', weight: 10 } })).toMatchObject({ action: 'keep' });
    expect(planInstallRepair(intent, [], { ...state, live: 'v1', previous: 'v3' })).toMatchObject({ action: 'keep' });
    expect(planInstallRepair({ ...intent, redeploy: true }, [], state)).toMatchObject({ action: 'remove', why: expect.stringContaining('was redeploying version v3') });
  });

  it('removes services in one command, where a service already gone is not a failure', () => {
    expect(removeServicesCommand(['shop-v3-web', 'shop-v3-worker'])).toEqual(['docker', 'service', 'rm', 'shop-v3-web', 'shop-v3-worker']);
    expect(removeServicesFailures('Error: No such service: shop-v3-worker\n')).toEqual([]);
    expect(removeServicesFailures('Error response from daemon: service shop-v3-worker not found\n')).toEqual([]);
    expect(removeServicesFailures('Error response from daemon: service with name shop-v3-worker not found: service not found\n')).toEqual([]);
    expect(removeServicesFailures('Error response from daemon: rpc error: code = Unavailable\n')).toEqual(['Error response from daemon: rpc error: code = Unavailable']);
  });
});
