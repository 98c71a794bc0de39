import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { managerEngine } from '../../src/apply/docker.js';
import { applyEdgeConfig } from '../../src/apply/edge/config.js';
import { ensureEdgeService } from '../../src/apply/edge/service.js';
import { clusterEdgeSite } from '../../src/apply/edge/site.js';
import { readReleaseDocument } from '../../src/apply/release-store.js';
import { lockDir, lockStatus } from '../../src/apply/lock.js';
import { acquireLeaseCommand } from '../../src/plan/lock.js';
import { silentLogger } from '../../src/util/log.js';
import { clusterPortFor } from '../../src/workflows/cluster-port.js';
import { switchVersion } from '../../src/workflows/switch.js';
import { startBusyboxVersion } from '../support/busybox-image.js';
import { cliEntry, runCli } from '../support/cli.js';
import type { TestCluster } from '../support/cluster.js';
import { startClusterWithImages, testImages } from '../support/image-cluster.js';
import { waitFor } from '../support/wait.js';

/**
 * The cluster lock as a lease on a real node over SSH, driven through the built CLI: Ctrl-C during a
 * buildinst and during an automatic canary gives the lock back; a lease whose holder went away is taken
 * over, and `--lock-wait` waits for it instead of failing.
 */
const images = testImages();
const { suffix, busybox, nginx } = images;
let tc: TestCluster;
let app: string;

async function startVersion(version: string): Promise<void> {
  await startBusyboxVersion(tc.cluster.manager, { app, version, network: tc.cluster.network, image: busybox });
}

/** Starts the CLI in the cluster's folder, as an operator would, so that the test can signal it. */
function startCli(args: string[]): ResultPromise<{ reject: false; stdin: 'ignore'; cwd: string; env: Record<string, string> }> {
  return execa('node', [cliEntry, ...args], { cwd: tc.dir, env: { NO_COLOR: '1' }, reject: false, stdin: 'ignore' });
}

const heldBy = async (pattern: RegExp) => {
  const status = await lockStatus(tc.cluster.manager, app);
  return status !== null && pattern.test(status.holder?.command ?? '') ? status : undefined;
};

beforeAll(async () => {
  tc = await startClusterWithImages(images, ['busybox', 'nginx'], {
    nodes: 1,
    app: `lk${suffix.slice(0, 4)}`,
    // buildinst installs `web` from an image that listens nowhere: it never gets healthy, so the run is still going when interrupted
    config: { images: { node: busybox, nginx, redis: busybox, web: busybox }, services: { web: { image: 'web', command: ['sleep', '3600'], port: 8080, http: true } } },
  });
  app = tc.loaded.config.app;
  await Promise.all([startVersion('v1'), startVersion('v2')]);
  const engine = await managerEngine(tc.cluster);
  try {
    await ensureEdgeService(tc.cluster, engine, { app, image: nginx });
  } finally {
    await engine.close();
  }
  const upstream = (version: string) => ({ label: version, upstream: { service: `${app}-${version}-web`, port: 8080 } });
  await applyEdgeConfig(await clusterEdgeSite(tc.cluster, app), { app, domain: tc.loaded.config.domain, versions: [upstream('v1'), upstream('v2')] });
  const control = await clusterPortFor(tc.cluster, tc.loaded.config, silentLogger);
  await waitFor('v1 to become live', () => switchVersion(control, 'v1').then(() => true, () => undefined));
}, 600_000);

afterAll(async () => {
  await tc?.stop();
});

describe('the cluster lock over SSH', () => {
  it('is given back when `canary --steps` is interrupted with Ctrl-C', async () => {
    const run = startCli(['canary', 'v2', '--steps', '50,100', '--interval', '10m']);
    await waitFor('the canary to hold the lock at 50%', async () => {
      const state = await readReleaseDocument(tc.cluster.manager, app);
      return state.canary?.version === 'v2' && (await heldBy(/canary v2 --steps/)) ? true : undefined;
    });
    run.kill('SIGINT');
    const result = await run;
    expect(result.exitCode, result.stderr).toBe(130);
    expect(result.stderr).toMatch(/interrupted \(SIGINT\): releasing the cluster lock/);
    expect(await lockStatus(tc.cluster.manager, app)).toBeNull();
    // the next command needs no clean-up by hand
    const abort = await runCli(['canary', '--abort'], { cwd: tc.dir });
    expect(abort.exitCode, abort.stderr).toBe(0);
  });

  it('takes over a lease whose holder went away; --lock-wait waits for it instead of failing', async () => {
    const gone = { holder: 'ops@laptop-gone', host: 'laptop-gone', pid: 4242, command: 'switch v2', since: new Date().toISOString(), token: 'deadbeefdeadbeef' };
    await tc.cluster.manager.exec(acquireLeaseCommand(lockDir(app), gone, 300));
    const refused = await runCli(['switch', 'v2'], { cwd: tc.dir });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/the cluster lock is held by ops@laptop-gone \(pid 4242, `switch v2`, since .*, lease expires in \d+ s\)/);
    // its last renewal: it then went away, so the lease runs out in a few seconds
    await tc.cluster.manager.exec(acquireLeaseCommand(lockDir(app), gone, 10, gone.token));
    const waited = await runCli(['switch', 'v2', '--lock-wait', '2m'], { cwd: tc.dir });
    expect(waited.exitCode, waited.stderr).toBe(0);
    expect(waited.stderr).toMatch(/took over the cluster lock: the lease of ops@laptop-gone \(pid 4242, `switch v2`/);
    expect(await lockStatus(tc.cluster.manager, app)).toBeNull();
    expect(await readReleaseDocument(tc.cluster.manager, app)).toMatchObject({ live: 'v2' });
  });

  it('is given back when buildinst is interrupted with Ctrl-C, and the half-installed version is removed', async () => {
    const v3Services = async () => (await tc.cluster.manager.exec(['docker', 'service', 'ls', '-q', '--filter', `label=depl.app=${app}`, '--filter', 'label=depl.version=v3'])).stdout.trim();
    const run = startCli(['buildinst', '--version', 'v3']);
    await waitFor('buildinst to hold the lock', () => heldBy(/buildinst --version v3/));
    // its web service made (it never gets healthy: the run waits in the health check)
    await waitFor('v3\'s service to be created', async () => ((await v3Services()) !== '' ? true : undefined));
    run.kill('SIGINT');
    const result = await run;
    expect(result.exitCode, result.stderr).toBe(130);
    expect(result.stderr).toMatch(/interrupted \(SIGINT\): removing the half-installed version v3, releasing the cluster lock/);
    expect(await lockStatus(tc.cluster.manager, app)).toBeNull();
    expect(await v3Services()).toBe('');
    const versions = await runCli(['--json', 'versions'], { cwd: tc.dir });
    expect(versions.exitCode, versions.stderr).toBe(0);
    expect(versions.stdout).not.toMatch(/"v3"/);
  });

  it('after buildinst is killed (SIGKILL), the next command that takes the lock removes the half-installed version', async () => {
    const v4Services = async () => (await tc.cluster.manager.exec(['docker', 'service', 'ls', '-q', '--filter', `label=depl.app=${app}`, '--filter', 'label=depl.version=v4'])).stdout.trim();
    const run = startCli(['buildinst', '--version', 'v4']);
    await waitFor('v4\'s service to be created', async () => ((await v4Services()) !== '' ? true : undefined));
    run.kill('SIGKILL');
    expect((await run).signal).toBe('SIGKILL');
    // as the operator sees it: the version is marked, and the lease of the dead process is given back by hand
    const listed = await runCli(['--json', 'versions'], { cwd: tc.dir });
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).versions).toContainEqual(expect.objectContaining({ version: 'v4', installing: expect.objectContaining({ command: 'depl buildinst --version v4' }) }));
    const status = await runCli(['status'], { cwd: tc.dir });
    expect(status.stdout).toMatch(/^ {2}v4: being installed by `depl buildinst --version v4` \(.+, since .+\); if that run is gone, the next depl command removes it$/m);
    expect((await runCli(['lock', 'release'], { cwd: tc.dir })).exitCode).toBe(0);
    const next = await runCli(['switch', 'v1'], { cwd: tc.dir });
    expect(next.exitCode, next.stderr).toBe(0);
    expect(next.stderr).toMatch(/repair: an interrupted `depl buildinst --version v4` \(.*\) was installing version v4 and never finished; removing it \(/);
    expect(await v4Services()).toBe('');
    const versions = await runCli(['--json', 'versions'], { cwd: tc.dir });
    expect(versions.stdout).not.toMatch(/"v4"/);
    expect(await readReleaseDocument(tc.cluster.manager, app)).toMatchObject({ live: 'v1' });
  });
});
