import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { managerEngine } from '../../src/apply/docker.js';
import { ensureEdgeService } from '../../src/apply/edge/service.js';
import { requestThroughEdge } from '../../src/apply/edge/site.js';
import { readReleaseDocument } from '../../src/apply/release-store.js';
import { lockStatus } from '../../src/apply/lock.js';
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
import { waitFor } from '../support/wait.js';

/**
 * The cluster lock as a lease on a real node over SSH, driven through the built CLI, and what a depl process
 * killed or interrupted mid-change leaves for the next one, on one cluster: a switch killed with SIGKILL
 * under load (the next switch takes the dead run's lease over and repairs; no request fails); dry runs that
 * change nothing; Ctrl-C during a buildinst and during an automatic canary gives the lock back; a buildinst
 * killed midway is removed by the next command.
 *
 * Which step a killed switch died at, a lock wait and a refused lock are proven step by step on the fake
 * cluster (test/unit/release/workflows.test.ts "a depl killed at any step of a switch",
 * test/unit/release/lock-held.test.ts): here, what needs the real process, node and edge.
 */
const images = testImages();
const { suffix, busybox, nginx } = images;
let tc: TestCluster;
let app: string;
let domain: string;
let control: ClusterPort;

async function startVersion(version: string): Promise<void> {
  await startBusyboxVersion(tc.cluster.manager, { app, version, network: tc.cluster.network, image: busybox, health: true });
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
  domain = tc.loaded.config.domain;
  // p1 and p2 are only there to be pruned (in a dry run); p2 after p1: prune --keep 1 keeps the newest one
  await Promise.all([startVersion('v1'), startVersion('v2'), startVersion('p1')]);
  await startVersion('p2');
  const engine = await managerEngine(tc.cluster);
  try {
    await ensureEdgeService(tc.cluster, engine, { app, image: nginx });
  } finally {
    await engine.close();
  }
  control = await clusterPortFor(tc.cluster, tc.loaded.config, silentLogger);
  // the versions labelled as installed are served at their hosts once depl brings the edge to the recorded state
  await syncRelease(control, 'depl buildinst');
  await waitFor('v1 to become live', () => switchVersion(control, 'v1').then(() => true, () => undefined));
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

/** Runs `depl switch <version>` until it stops at `point` (DEPL_PAUSE_AT, src/util/pause-point.ts), then kills it with SIGKILL. */
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

describe('a switch killed with SIGKILL', () => {
  // The step where the real edge matters: the routing table is in place (the Lua edge reads it on its own),
  // depl dies before it hears the edge confirm it. Every other step is killed on the fake cluster.
  const point = 'after-config-written';

  it(`at ${point}, under load: status names what the edge serves, the next switch takes the dead run's lease over and repairs, and no request failed`, async () => {
    let seen: { status: string | null; served: string | null; next: string; after: string | null } | undefined;
    // the load lasts as long as the scenario: it waits for answers before the kill and after the repair
    const result = await runLoad(
      { url: control.site.url, host: domain, durationSeconds: 1, keepAlive: { connections: 4, rate: 100 }, newConnections: { connections: 2, rate: 40 } },
      async (load) => {
        await load.responses(200);
        const live = (await readReleaseDocument(tc.cluster.manager, app)).live;
        await killedSwitch(live === 'v1' ? 'v2' : 'v1', point);
        expect(await lockStatus(tc.cluster.manager, app)).not.toBeNull();
        await load.responses(200);
        const [reported, answered] = [await status(), await served()];
        const next = reported === 'v1' ? 'v2' : 'v1';
        const run = await runCli(['switch', next], { cwd: tc.dir });
        expect(run.exitCode, run.stderr).toBe(0);
        expect(run.stderr).toMatch(/the cluster lock is held by .*, a process that no longer runs on this machine/);
        seen = { status: reported, served: answered, next, after: await served() };
        await load.responses(200);
      },
    );
    console.log(`SIGKILL at ${point} under load: ${JSON.stringify(seen)}; ${result.samples.length} responses, ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`);
    expect(seen!.status).toBe(seen!.served);
    expect(seen!.after).toBe(seen!.next);
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
    expect(runs.prune!.stdout).toMatch(/^ {2}remove p1: older than the 1 newest/m);
    expect(runs.prune!.stdout).toMatch(/^ {2}1\. take p1 off the edge and record the prune$/m);
    expect(runs.prune!.stdout).toMatch(/^ {2}\d+\. remove version p1's services \(.*-p1-web/m);
    const json = await runCli(['--json', 'switch', other, '--dry-run'], { cwd: tc.dir });
    expect(JSON.parse(json.stdout)).toMatchObject({ dryRun: true, before: { live }, after: { live: other } });
    expect(await snapshot()).toEqual(before);
  });
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
    // a change to another version than the live one (v1, put back after the killed switch and the aborted canary)
    const next = await runCli(['switch', 'v2'], { cwd: tc.dir });
    expect(next.exitCode, next.stderr).toBe(0);
    expect(next.stderr).toMatch(/repair: an interrupted `depl buildinst --version v4` \(.*\) was installing version v4 and never finished; removing it \(/);
    expect(await v4Services()).toBe('');
    const versions = await runCli(['--json', 'versions'], { cwd: tc.dir });
    expect(versions.stdout).not.toMatch(/"v4"/);
    expect(await readReleaseDocument(tc.cluster.manager, app)).toMatchObject({ live: 'v2' });
  });
});

describe('the first command on a cluster an earlier depl left (state layout 1)', () => {
  it('stops an earlier depl\'s service that could read the ACME account, and waits for its task to end, before the account moves; the layout is recorded once that service is gone', async () => {
    const appDir = `/var/lib/depl/${app}`;
    const witness = `/tmp/depl-witness-${suffix}`;
    const earlier = `${app}-old-autoscaler`;
    const account = '{"key":"-----BEGIN EC PRIVATE KEY-----\\nearlier\\n-----END EC PRIVATE KEY-----"}';
    const shell = (script: string, ...args: string[]) => tc.cluster.manager.exec(['sh', '-c', script, 'sh', ...args]);
    const started = Date.now();
    // the folder as an earlier depl left it: no layout file, the ACME account beside release.json
    await shell('set -e; rm -f "$1/layout"; rm -rf "$1/tls"; umask 077; printf %s "$2" > "$1/tls-account.json"; mkdir -p "$3"', appDir, account, witness);
    // an earlier depl's controller: the app's folder read-only with tls/ not hidden, settings this depl cannot read.
    // It notes each moment it sees the account in tls/, and goes on looking for a second after SIGTERM: a move
    // made before its task has ended (not just been asked to) is seen.
    const watch = 'stopping=0; trap "stopping=1" TERM; n=0; echo watching > /witness/log; '
      + 'while [ $n -lt 20 ]; do [ -e /run/depl/release/tls/account.json ] && echo seen >> /witness/log; [ $stopping = 1 ] && n=$((n+1)); usleep 50000; done';
    await tc.cluster.manager.exec(['docker', 'service', 'create', '--detach', '--no-resolve-image', '--name', earlier,
      '--label', `depl.app=${app}`, '--label', 'depl.version=old', '--label', 'depl.service=autoscaler', '--label', 'depl.http=false',
      '--mount', `type=bind,source=${appDir},target=/run/depl/release,readonly`, '--mount', `type=bind,source=${witness},target=/witness`,
      busybox, 'sh', '-c', watch]);
    const log = async () => (await shell('cat "$1/log" 2>/dev/null || true', witness)).stdout.trim().split('\n');
    await waitFor(`${earlier} to watch`, async () => ((await log()).includes('watching') ? true : undefined));

    // (after the cases above v2 is live; alone, v1 is)
    const [first, second] = (await readReleaseDocument(tc.cluster.manager, app)).live === 'v2' ? ['v1', 'v2'] : ['v2', 'v1'];
    const moved = await runCli(['switch', first!], { cwd: tc.dir });
    expect(moved.exitCode, moved.stderr).toBe(0);
    expect(moved.stderr).toContain(`stopping ${earlier}, which an earlier depl installed with more than it needs, before the ACME account moves into tls/`);
    expect(moved.stderr).toMatch(new RegExp(`the autoscale controller ${earlier} has settings this depl cannot read .*: this depl cannot install it again safely, so it is left stopped \\(it could read the ACME account where it is now\\)`));
    expect(await log()).toEqual(['watching']);
    expect((await tc.cluster.manager.exec(['docker', 'service', 'inspect', earlier, '--format', '{{.Spec.Mode.Replicated.Replicas}}'])).stdout.trim()).toBe('0');
    expect(await tc.cluster.manager.readFile(`${appDir}/tls/account.json`)).toBe(account);
    // the layout is not recorded while a service is reported: the next command looks again
    expect((await shell('ls "$1"', appDir)).stdout.split('\n')).not.toContain('layout');
    expect(await readReleaseDocument(tc.cluster.manager, app)).toMatchObject({ live: first });

    await tc.cluster.manager.exec(['docker', 'service', 'rm', earlier]);
    const finished = await runCli(['switch', second!], { cwd: tc.dir });
    expect(finished.exitCode, finished.stderr).toBe(0);
    expect((await tc.cluster.manager.readFile(`${appDir}/layout`))?.trim()).toBe('2');
    expect((await shell('ls "$1"', appDir)).stdout.split('\n').filter((f) => f.startsWith('tls-'))).toEqual([]);
    await shell('rm -rf "$1"', witness);
    process.stderr.write(`state layout move with an earlier depl's service on a real swarm: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  });
});
