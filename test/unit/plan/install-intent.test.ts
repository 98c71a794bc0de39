import { describe, expect, it } from 'vitest';
import {
  installIntentPath, parseInstallIntent, planInstallRepair, renderInstallIntent, type InstallIntent,
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
      action: 'remove', version: 'v3', fromEdge: true, restart: [],
      services: ['shop-v3-extra', 'shop-v3-web', 'shop-v3-worker'],
      why: 'an interrupted `depl buildinst --version v3` (ana@laptop, 2026-11-30T06:00:00.000Z) was installing version v3 and never finished; removing it (shop-v3-extra, shop-v3-web, shop-v3-worker)',
    });
  });

  it('a version with no service yet only needs the intent dropped from the edge side', () => {
    expect(planInstallRepair(intent, [installed('v1', ['shop-v1-web'])], emptyReleaseState('shop'))).toMatchObject({ action: 'remove', fromEdge: false, services: ['shop-v3-web', 'shop-v3-worker'] });
  });

  it('starts again the stateful services the interrupted install stopped to take their volume over, once its own are gone', () => {
    const takeover: InstallIntent = { ...intent, stopped: [{ name: 'shop-v2-web', version: 'v2', replicas: 1 }] };
    expect(parseInstallIntent(renderInstallIntent(takeover))).toEqual({ ok: true, intent: takeover });
    expect(planInstallRepair(takeover, [], emptyReleaseState('shop'))).toMatchObject({
      action: 'remove', restart: [{ service: 'shop-v2-web', replicas: 1 }], why: expect.stringMatching(/and starting again what it stopped to take its volume over \(shop-v2-web\)$/),
    });
    // once the new version is live it keeps the volume: nothing is started again
    expect(planInstallRepair(takeover, [], { ...emptyReleaseState('shop'), live: 'v3' })).toMatchObject({ action: 'keep' });
  });

  it('never removes what serves traffic or is the rollback target', () => {
    const state = emptyReleaseState('shop');
    expect(planInstallRepair(intent, [], { ...state, live: 'v3' })).toMatchObject({ action: 'keep', why: expect.stringMatching(/which is live; it stays$/) });
    expect(planInstallRepair(intent, [], { ...state, live: 'v1', canary: { version: 'v3', weight: 10 } })).toMatchObject({ action: 'keep' });
    expect(planInstallRepair(intent, [], { ...state, live: 'v1', previous: 'v3' })).toMatchObject({ action: 'keep' });
  });

  it('puts a redeploy\'s services back and removes only those it added: the branch\'s earlier deploy stays', () => {
    const spec = { Name: 'shop-v3-web', Labels: { 'depl.version': 'v3' } };
    const redeploy: InstallIntent = { ...intent, command: 'depl buildinst --branch v3', services: ['shop-v3-web', 'shop-v3-worker', 'shop-v3-extra'], redeploy: true, replaced: [{ name: 'shop-v3-web', spec }] };
    const listed = [installed('v3', ['shop-v3-extra', 'shop-v3-web', 'shop-v3-worker'])];
    expect(planInstallRepair(redeploy, listed, emptyReleaseState('shop'))).toEqual({
      action: 'restore', version: 'v3', restore: [{ name: 'shop-v3-web', spec }], remove: ['shop-v3-extra', 'shop-v3-worker'],
      why: 'an interrupted `depl buildinst --branch v3` (ana@laptop, 2026-11-30T06:00:00.000Z) was redeploying version v3 and never finished; putting back its earlier deploy (shop-v3-web) and removing what it added (shop-v3-extra, shop-v3-worker)',
    });
    expect(parseInstallIntent(renderInstallIntent(redeploy))).toEqual({ ok: true, intent: redeploy });
    // written by a depl that did not record the earlier specs: nothing can be put back, and nothing is removed
    expect(planInstallRepair({ ...intent, redeploy: true }, listed, emptyReleaseState('shop'))).toMatchObject({ action: 'keep', why: expect.stringContaining('was redeploying version v3 and never finished; its services stay as they are') });
  });
});
