import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyEdgeConfig } from '../../src/apply/edge/config.js';
import { syncRelease } from '../../src/workflows/release.js';
import type { ClusterPort } from '../../src/workflows/cluster-port.js';
import { switchVersion } from '../../src/workflows/switch.js';
import { localControl, startLocalEdge, startVersionServer, type LocalEdge, type VersionServer } from '../support/local-edge.js';
import { runLoad } from '../support/load.js';
import { expectScenarioHeld, switchRollbackCanaryPromote, type ScenarioMarks } from '../support/switch-scenario.js';

/**
 * The promise of the tool: switch, rollback, canary 30%, abort, promote and installing another version under
 * steady load through real nginx, keep-alive, new-connection and cookie-keeping clients alike (the last on
 * Node's http, which never retries), and not one request fails.
 */
const app = `l${process.pid}`;
const domain = 'live.test';
let edge: LocalEdge;
let v1: VersionServer;
let v2: VersionServer;
let v3: VersionServer | undefined;
let control: ClusterPort;

beforeAll(async () => {
  edge = await startLocalEdge(app);
  v1 = await startVersionServer(app, 'v1', { delayMs: 2 });
  v2 = await startVersionServer(app, 'v2', { delayMs: 2 });
  await applyEdgeConfig(edge.site, { app, domain, versions: [v1.edgeVersion, v2.edgeVersion] });
  control = localControl(edge, app, domain, () => [v1, v2, v3]);
  await switchVersion(control, 'v1');
});

afterAll(async () => {
  await edge?.stop();
  await Promise.all([v1, v2, v3].map((s) => s?.stop()));
});

describe('switching under load', () => {
  it('switch, rollback, canary 30%, abort, promote and an install under load: zero failed, zero non-2xx', async () => {
    let marks: ScenarioMarks | undefined;
    const install = async () => {
      v3 = await startVersionServer(app, 'v3', { delayMs: 2 });
      // v3 now listed as installed: the edge is brought to the recorded state plus v3
      await syncRelease(control, 'depl buildinst --version v3');
    };
    // as long as the scenario, which waits for the answers it judges each step by (a fixed 20 s outlasted it)
    const result = await runLoad(
      { url: edge.site.url, host: domain, durationSeconds: 1, keepAlive: { connections: 8, rate: 300 }, newConnections: { connections: 4, rate: 100 }, sticky: { clients: 8, rate: 80 } },
      async (load) => {
        marks = await switchRollbackCanaryPromote(control, load, install);
      },
    );
    const canary = expectScenarioHeld(result, marks!);
    expect(result.samples.length).toBeGreaterThan(4_000);
    console.log(`load: ${result.samples.length} responses, ${result.errors} errors, canary share ${(canary.canaryShare * 100).toFixed(1)}% of ${canary.canaryRequests}, ${canary.stickyClients} cookie clients each on one side; switch ${JSON.stringify(marks!.switchPhases)}`);
  });

});
