import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyEdgeConfig } from '../../src/apply/edge.js';
import { silentLogger } from '../../src/util/log.js';
import { promoteCanary, setCanary } from '../../src/workflows/canary.js';
import type { EdgeControl } from '../../src/workflows/edge-control.js';
import { rollback } from '../../src/workflows/rollback.js';
import { switchVersion } from '../../src/workflows/switch.js';
import { startLocalEdge, startVersionServer, type LocalEdge, type VersionServer } from '../support/local-edge.js';
import { runLoad, type LoadSample } from '../support/load.js';

/**
 * The promise of the tool: switch, rollback, canary 30% and promote under steady load through real nginx,
 * keep-alive and new-connection clients alike, and not one request fails.
 */
const app = `l${process.pid}`;
const domain = 'live.test';
let edge: LocalEdge;
let v1: VersionServer;
let v2: VersionServer;
let control: EdgeControl;

beforeAll(async () => {
  edge = await startLocalEdge(app);
  v1 = await startVersionServer(app, 'v1', { delayMs: 2 });
  v2 = await startVersionServer(app, 'v2', { delayMs: 2 });
  await applyEdgeConfig(edge.site, { app, domain, versions: [v1.edgeVersion, v2.edgeVersion] });
  control = { app, domain, site: edge.site, stateRemote: edge.site.remote, stateRoot: `${edge.dir}/state`, healthPath: '/healthz', log: silentLogger };
  await switchVersion(control, 'v1');
});

afterAll(async () => {
  await edge?.stop();
  await Promise.all([v1, v2].map((s) => s?.stop()));
});

describe('switching under load', () => {
  it('switch, rollback, canary 30% and promote within 20 s of load: zero failed, zero non-2xx', async () => {
    const marks: Record<string, number> = {};
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const result = await runLoad(
      { url: edge.site.url, host: domain, durationSeconds: 20, keepAlive: { connections: 8, rate: 300 }, newConnections: { connections: 4, rate: 100 } },
      async () => {
        await wait(2_000);
        await switchVersion(control, 'v2');
        marks.switched = performance.now();
        await wait(2_000);
        await rollback(control);
        marks.rolledBack = performance.now();
        await wait(1_000);
        marks.canaryStart = performance.now();
        await setCanary(control, 'v2', 30);
        marks.canaryOn = performance.now();
        await wait(9_000);
        marks.promoteStart = performance.now();
        await promoteCanary(control);
        marks.promoted = performance.now();
      },
    );
    // By send time: a request sent after a change returned must be served by the new side.
    const between = (from: number, to: number) => result.samples.filter((s) => s.sentAt > from && s.sentAt < to);
    const share = (samples: LoadSample[], version: string) => samples.filter((s) => s.version === version).length / samples.length;
    const canaryWindow = between(marks.canaryOn!, marks.promoteStart!);

    for (const [name, from, to, expected] of [['switch', marks.switched!, marks.switched! + 1_500, 'v2'], ['rollback', marks.rolledBack!, marks.canaryStart!, 'v1'], ['promote', marks.promoted!, Infinity, 'v2']] as const) {
      const late = between(from, to).filter((s) => s.version !== expected);
      if (late.length > 0) console.log(`late after ${name} (${late.length}): ${JSON.stringify(late.slice(0, 5).map((s) => ({ c: s.client, sent: Math.round(s.sentAt - from), got: Math.round(s.at - from), v: s.version })))}`);
    }
    expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx }).toEqual({ errors: 0, timeouts: 0, non2xx: 0 });
    expect(result.samples.length).toBeGreaterThan(4_000);
    expect(result.samples.every((s) => s.status === 200)).toBe(true);
    // Once a change returned, every request sent later on a new connection went to the new side. A keep-alive
    // client may have opened a connection during nginx's ~100 ms overlap of old and new workers and send its
    // first request on it only at its next rate tick (autocannon opens connections ahead of requests): that
    // one request is answered by the old side, then the old worker closes the connection.
    const servedByNew = (from: number, to: number, version: string) => {
      const window = between(from, to);
      expect(window.length).toBeGreaterThan(10);
      expect(window.filter((s) => s.client === 'new-connection' && s.version !== version)).toEqual([]);
      const late = window.filter((s) => s.version !== version);
      expect(late.length).toBeLessThanOrEqual(Math.max(3, window.length * 0.01));
      expect(late.every((s) => s.sentAt - from < 1_100)).toBe(true);
    };
    servedByNew(marks.switched!, marks.switched! + 1_500, 'v2');
    servedByNew(marks.rolledBack!, marks.canaryStart!, 'v1');
    expect(canaryWindow.length).toBeGreaterThanOrEqual(2_000);
    expect(share(canaryWindow, 'v2')).toBeGreaterThan(0.25);
    expect(share(canaryWindow, 'v2')).toBeLessThan(0.35);
    servedByNew(marks.promoted!, Infinity, 'v2');
    console.log(`load: ${result.samples.length} responses, ${result.errors} errors, canary share ${(share(canaryWindow, 'v2') * 100).toFixed(1)}% of ${canaryWindow.length}`);
  });
});
