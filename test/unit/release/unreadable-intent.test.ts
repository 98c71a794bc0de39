import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { installIntentPath } from '../../../src/plan/install-intent.js';
import { edgeStats } from '../../../src/workflows/stats.js';
import { readAndPlan } from '../../../src/workflows/buildinst.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { readReleaseReport } from '../../../src/workflows/versions.js';
import { fakeBuildinst } from '../../support/fake-buildinst.js';
import { startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * A corrupt install intent (installing.json) on the fake cluster: the commands an operator runs during an incident
 * (status and versions through readReleaseReport, stats) still show the release state and name the file; the
 * commands that act on the intent (a switch, whose lock repairs it; buildinst) refuse with the typed error.
 */
const yaml = `
app: shop
domain: shop.test
images: { node: depl-base/node:20 }
services:
  web: { build: { context: ., dockerfile: Dockerfile }, port: 8080, http: true, health: /healthz }
`;

let fake: FakeCluster;
let intentFile: string;
beforeEach(async () => {
  fake = await startFakeCluster({ versions: ['v1', 'v2'] });
  await switchVersion(fake.freshControl(), 'v1');
  intentFile = installIntentPath(fake.app, fake.control.stateRoot!);
  await mkdir(dirname(intentFile), { recursive: true });
  await writeFile(intentFile, '{"schema": 1, "app": "shop", "vers');
});
afterEach(async () => {
  await fake.close();
});

const { request, port } = fakeBuildinst(() => fake, yaml);

describe('a corrupt install intent', () => {
  it('status and versions still report the release state, and say which file is unreadable and what to do', async () => {
    const report = await readReleaseReport(fake.freshControl());
    expect(report).toMatchObject({ live: 'v1', interrupted: false });
    expect(report.versions.map((v) => v.version)).toEqual(['v1', 'v2']);
    expect(report.intentUnreadable?.file).toBe(intentFile);
    expect(report.intentUnreadable?.problem).toContain(`${intentFile} is not a depl install intent (not JSON)`);
    expect(report.intentUnreadable?.hint).toMatch(/remove .*installing\.json.*depl versions/);
  });

  it('stats still reports the live version, with the unreadable file named', async () => {
    const stats = await edgeStats(fake.freshControl(), 60_000);
    expect(stats.live).toBe('v1');
    expect(stats.intentUnreadable?.file).toBe(intentFile);
  });

  it('a switch (its lock repairs interrupted installs) and buildinst refuse with RELEASE_STATE_CORRUPT and change nothing', async () => {
    await expect(switchVersion(fake.freshControl(), 'v2')).rejects.toMatchObject({ code: 'RELEASE_STATE_CORRUPT', message: expect.stringContaining(intentFile) });
    expect((await readReleaseReport(fake.freshControl())).live).toBe('v1');
    await expect(readAndPlan(port(), request('v3'))).rejects.toMatchObject({ code: 'RELEASE_STATE_CORRUPT' });
    expect(fake.swarm.calls).toEqual([]);
  });
});
