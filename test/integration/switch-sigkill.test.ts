import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { managerEngine } from '../../src/apply/docker.js';
import { ensureEdgeService } from '../../src/apply/edge/service.js';
import { requestThroughEdge } from '../../src/apply/edge/site.js';
import { lockStatus } from '../../src/apply/lock.js';
import { readReleaseDocument } from '../../src/apply/release-store.js';
import { silentLogger } from '../../src/util/log.js';
import { pollUntil } from '../../src/util/poll.js';
import { clusterPortFor, type ClusterPort } from '../../src/workflows/cluster-port.js';
import { syncRelease } from '../../src/workflows/release.js';
import { switchVersion } from '../../src/workflows/switch.js';
import { startBusyboxVersion } from '../support/busybox-image.js';
import { cliEntry, runCli } from '../support/cli.js';
import type { TestCluster } from '../support/cluster.js';
import { startClusterWithImages, testImages } from '../support/image-cluster.js';
import { runLoad } from '../support/load.js';

/**
 * `depl switch` killed with SIGKILL at each step in turn, under steady load through the edge, on one cluster:
 * after each kill `depl status` names the version the edge actually serves, the next `depl switch` works
 * without clean-up by hand (the dead run's lease is taken over, its half-done change repaired), and not one
 * request fails. The steps are reached with depl's failpoints (DEPL_PAUSE_AT, src/util/pause-point.ts): the
 * process stops there and is killed.
 */
const KILL_POINTS = ['after-lock', 'after-intent', 'after-config-written', 'after-reload', 'before-record'] as const;
const images = testImages();
const { suffix, busybox, nginx } = images;
let tc: TestCluster;
let app: string;
let domain: string;
let control: ClusterPort;

async function startVersion(version: string): Promise<void> {
  await startBusyboxVersion(tc.cluster.manager, { app, version, network: tc.cluster.network, image: busybox, health: true });
}

beforeAll(async () => {
  tc = await startClusterWithImages(images, ['busybox', 'nginx'], { nodes: 1, app: `sk${suffix.slice(0, 4)}`, config: { services: { web: { image: busybox, port: 8080, http: true, health: '/healthz' } } } });
  app = tc.loaded.config.app;
  domain = tc.loaded.config.domain;
  // v3 and v4 are only there to be pruned (in a dry run)
  // v4 after v3: prune --keep 1 keeps the newest one, so their creation order must be known
  await Promise.all([startVersion('v1'), startVersion('v2'), startVersion('v3')]);
  await startVersion('v4');
  const engine = await managerEngine(tc.loaded, tc.cluster);
  try {
    await ensureEdgeService(tc.cluster, engine, { app, image: nginx });
  } finally {
    await engine.close();
  }
  control = await clusterPortFor(tc.cluster, tc.loaded.config, silentLogger);
  await syncRelease(control, 'depl buildinst');
  await pollUntil(() => switchVersion(control, 'v1').then(() => true, () => undefined), {
    timeoutMs: 120_000, intervalMs: 500, onTimeout: () => { throw new Error('v1 never became live'); },
  });
}, 600_000);

afterAll(async () => {
  await tc?.stop();
});

const served = async () => (await requestThroughEdge(control.site, domain, '/')).version;
const status = async () => {
  const run = await runCli(['--json', 'status'], { cwd: tc.dir });
  expect(run.exitCode, run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as { live: string | null }).live;
};

/** Runs `depl switch <version>` until it stops at `point`, then kills it with SIGKILL. */
async function killedSwitch(version: string, point: string): Promise<void> {
  const child = execa('node', [cliEntry, 'switch', version], { cwd: tc.dir, env: { NO_COLOR: '1', DEPL_PAUSE_AT: point }, reject: false, stdin: 'ignore' });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  await pollUntil(async () => (stderr.includes(`paused at ${point}`) ? true : undefined), {
    timeoutMs: 60_000, intervalMs: 20, onTimeout: () => { throw new Error(`depl switch never reached ${point}: ${stderr}`); },
  });
  child.kill('SIGKILL');
  const result = await child;
  expect(result.signal).toBe('SIGKILL');
}

describe('a switch killed with SIGKILL at each step', () => {
  it('leaves status and the served version agreeing, the next switch working, and no request failed', async () => {
    const seen: { point: string; status: string | null; served: string | null; next: string; after: string | null }[] = [];
    const result = await runLoad(
      { url: control.site.url, host: domain, durationSeconds: 10 + KILL_POINTS.length * 12, keepAlive: { connections: 4, rate: 100 }, newConnections: { connections: 2, rate: 40 } },
      async () => {
        for (const point of KILL_POINTS) {
          const live = (await readReleaseDocument(tc.cluster.manager, app)).live;
          await killedSwitch(live === 'v1' ? 'v2' : 'v1', point);
          const [reported, answered] = [await status(), await served()];
          const next = reported === 'v1' ? 'v2' : 'v1';
          const run = await runCli(['switch', next], { cwd: tc.dir });
          expect(run.exitCode, `${point}: ${run.stderr}`).toBe(0);
          seen.push({ point, status: reported, served: answered, next, after: await served() });
        }
      },
    );
    console.log(`SIGKILL at each step under load: ${JSON.stringify(seen)}; ${result.samples.length} responses, ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`);
    for (const s of seen) {
      expect(s.status, s.point).toBe(s.served);
      expect(s.after, s.point).toBe(s.next);
    }
    expect(seen.map((s) => s.point)).toEqual([...KILL_POINTS]);
    expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx }).toEqual({ errors: 0, timeouts: 0, non2xx: 0 });
    expect(await lockStatus(tc.cluster.manager, app)).toBeNull();
    const doc = await readReleaseDocument(tc.cluster.manager, app);
    expect(doc.pending).toBeNull();
    expect(doc.live).toBe(await served());
  });
});

describe('--dry-run', () => {
  /** Everything a change could touch: the release document, the edge's files and what it serves, the lock, the services. */
  const snapshot = async () => ({
    doc: await tc.cluster.manager.readFile(`/var/lib/depl/${app}/release.json`),
    routing: await tc.cluster.manager.readFile(`/var/lib/depl/${app}/edge/routing`),
    nginx: await tc.cluster.manager.readFile(`/var/lib/depl/${app}/edge/nginx.conf`),
    served: await served(),
    lock: await lockStatus(tc.cluster.manager, app),
    services: (await tc.cluster.manager.exec(['docker', 'service', 'ls', '--format', '{{.Name}} {{.Replicas}}'])).stdout.split('\n').sort(),
  });

  it('shows the state change and the edge diff for switch, rollback, canary and prune, and changes nothing', async () => {
    const before = await snapshot();
    const live = before.served!;
    const other = live === 'v1' ? 'v2' : 'v1';
    const runs: Record<string, { exitCode: number; stdout: string; stderr: string }> = {
      switch: await runCli(['switch', other, '--dry-run'], { cwd: tc.dir }),
      rollback: await runCli(['rollback', '--dry-run'], { cwd: tc.dir }),
      canary: await runCli(['canary', other, '--weight', '20', '--dry-run'], { cwd: tc.dir }),
      prune: await runCli(['prune', '--keep', '1', '--dry-run'], { cwd: tc.dir }),
    };
    for (const [name, run] of Object.entries(runs)) {
      expect(run.exitCode, `${name}: ${run.stderr}`).toBe(0);
      // prune prints its plan (src/plan/prune.ts), the one its applier runs
      expect(run.stdout, name).toMatch(name === 'prune' ? /^Plan for depl prune --keep 1:$/m : /^Dry run of `depl .*`: nothing was changed\./);
    }
    expect(runs.switch!.stdout).toMatch(new RegExp(`live: ${live} -> ${other}`));
    expect(runs.switch!.stdout).toMatch(new RegExp(`^-live ${live}$\\n^\\+live ${other}$`, 'm'));
    expect(runs.rollback!.stdout).toMatch(new RegExp(`live: ${live} -> ${other}`));
    expect(runs.canary!.stdout).toMatch(new RegExp(`canary: \\(none\\) -> ${other} at 20%`));
    expect(runs.canary!.stdout).toMatch(new RegExp(`^\\+canary ${other} 20$`, 'm'));
    expect(runs.prune!.stdout).toMatch(/^ {2}remove v3: older than the 1 newest/m);
    expect(runs.prune!.stdout).toMatch(/^ {2}1\. take v3 off the edge and record the prune$/m);
    expect(runs.prune!.stdout).toMatch(/^ {2}\d+\. remove version v3's services \(.*-v3-web/m);
    const json = await runCli(['--json', 'switch', other, '--dry-run'], { cwd: tc.dir });
    expect(JSON.parse(json.stdout)).toMatchObject({ dryRun: true, before: { live }, after: { live: other } });
    expect(await snapshot()).toEqual(before);
  });
});
