import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readInstallIntent, writeInstallIntent } from '../../../src/apply/install-intent.js';
import { forceReleaseLock, lockStatus } from '../../../src/apply/lock.js';
import type { InstallIntent } from '../../../src/plan/install-intent.js';
import type { EdgeTlsRender } from '../../../src/plan/tls/nginx.js';
import { installCertificate, listCertificates, type TlsStore } from '../../../src/apply/tls/store.js';
import { parseConfig, type LoadedConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/util/log.js';
import { syncCertificatesForRelease } from '../../../src/workflows/tls/edge-sync.js';
import { configGeneration } from '../../../src/plan/nginx.js';
import { readReleaseDocument } from '../../../src/apply/release-store.js';
import { abortCanary, promoteCanary, runCanary, setCanary } from '../../../src/workflows/canary.js';
import type { ClusterPort } from '../../../src/workflows/cluster-port.js';
import { formatDryRun, readRelease, syncRelease, withRelease } from '../../../src/workflows/release.js';
import { UserError } from '../../../src/errors.js';
import { releaseTarget } from '../../../src/workflows/release-target.js';
import { rollback } from '../../../src/workflows/rollback.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { fakeVersion, KILL_POINTS, Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/** The release workflows end to end on the fake cluster (test/support/fake-cluster.ts): seconds, no Docker. */
let fake: FakeCluster;
let control: ClusterPort;

beforeEach(async () => {
  fake = await startFakeCluster({ versions: ['v1', 'v2', 'v3'] });
  control = fake.control;
});
afterEach(async () => {
  await fake.close();
});

const doc = () => readReleaseDocument(control.stateRemote, fake.app, control.stateRoot);
const nginxConf = () => readFile(`${fake.dir}/edge/nginx.conf`, 'utf8');
const routingFile = () => readFile(`${fake.dir}/edge/routing`, 'utf8');
const live = async () => (await fake.get(fake.domain)).version;
const exists = (file: string) => stat(file).then(() => true, () => false);

describe('switch, rollback, canary on the fake cluster', () => {
  it('switches, records, rolls back, canaries, promotes and aborts', async () => {
    expect(await switchVersion(control, 'v1')).toMatchObject({ live: 'v1', previous: null });
    expect(await live()).toBe('v1');
    expect(await switchVersion(control, 'v2')).toMatchObject({ live: 'v2', previous: 'v1' });
    expect(await live()).toBe('v2');
    expect(await rollback(control)).toMatchObject({ live: 'v1', previous: 'v2' });
    expect(await setCanary(control, 'v3', 40)).toMatchObject({ live: 'v1', canary: { version: 'v3', weight: 40 } });
    const sides = new Set<string | null>();
    for (let i = 0; i < 60; i++) sides.add((await fake.get(fake.domain, '/', `c${i}`)).version);
    expect(sides).toEqual(new Set(['v1', 'v3']));
    expect(await abortCanary(control)).toMatchObject({ live: 'v1', canary: null });
    await setCanary(control, 'v3', 10);
    expect(await promoteCanary(control)).toMatchObject({ live: 'v3', previous: 'v1' });
    const recorded = await doc();
    expect(recorded).toMatchObject({ live: 'v3', previous: 'v1', canary: null, pending: null, edge: { generation: fake.served() } });
    expect(recorded.history.map((h) => `${h.action} ${h.version}`)).toEqual(['switch v1', 'switch v2', 'rollback v1', 'canary v3', 'abort v3', 'canary v3', 'promote v3']);
    expect(await lockStatus(control.stateRemote, fake.app, control.stateRoot)).toBeNull();
    // seven changes, each writing through the lease's fence: a shell per write on the fake's manager
  }, 30_000);

  it('refuses what is not installed or not healthy, changing nothing', async () => {
    const before = await nginxConf();
    await expect(switchVersion(control, 'v9')).rejects.toMatchObject({ code: 'NOT_INSTALLED', exitCode: 2, message: expect.stringMatching(/not installed \(installed: v1, v2, v3\)/) });
    await expect(switchVersion(control, 'Bad_Label')).rejects.toThrow(/version "Bad_Label"/);
    fake.unhealthy.add('v2');
    await expect(switchVersion(control, 'v2')).rejects.toMatchObject({ code: 'UNHEALTHY', message: expect.stringMatching(/refusing: version v2 is not healthy .* answered 500/) });
    await expect(rollback(control)).rejects.toMatchObject({ code: 'NO_PREVIOUS' });
    expect(await nginxConf()).toBe(before);
    expect(await exists(`${control.stateRoot}/${fake.app}/release.json`)).toBe(false);
    expect((await fake.get(fake.domain)).status).toBe(404);
  });

  it('never loads settings nginx rejects, and records nothing', async () => {
    await switchVersion(control, 'v1');
    const before = { conf: await nginxConf(), doc: await doc(), served: fake.served() };
    fake.rejectConfig = 'unknown directive "oops"';
    // Settings other than the ones the edge runs (a new listen port, say) need a reload, which nginx -t refuses.
    const moved = { ...control, site: { ...control.site, render: { ...control.site.render, workerProcesses: 2 } } };
    await expect(switchVersion(moved, 'v2')).rejects.toMatchObject({ code: 'EDGE_CONFIG_REJECTED' });
    expect({ conf: await nginxConf(), doc: await doc(), served: fake.served() }).toEqual(before);
  });

  it('puts the previous routing back when the edge does not confirm the new one, and records nothing', async () => {
    await switchVersion(control, 'v1');
    const before = { routing: await routingFile(), doc: await doc() };
    fake.frozen = true;
    await expect(switchVersion(control, 'v2')).rejects.toMatchObject({ code: 'EDGE_APPLY_TIMEOUT' });
    // When the edge reads its file again, it must not make v2 live.
    fake.frozen = false;
    expect({ routing: await routingFile(), doc: await doc() }).toEqual(before);
    expect(await live()).toBe('v1');
  });

  it('puts the previous routing back with the previous settings when the reload does not take, and says the edge serves it', async () => {
    await switchVersion(control, 'v1');
    const before = { conf: await nginxConf(), routing: await routingFile(), doc: await doc(), served: fake.served() };
    const moved = { ...control, site: { ...control.site, render: { ...control.site.render, workerProcesses: 2 } } };
    fake.unloadable = configGeneration({ app: fake.app }, moved.site.render);
    const failure = switchVersion(moved, 'v2');
    await expect(failure).rejects.toMatchObject({ code: 'EDGE_APPLY_TIMEOUT', outcome: 'restored' });
    await expect(failure).rejects.toThrow(/previous configuration was put back and reloaded; the previous routing \w+ and settings were put back and the edge serves it/);
    // The new routing file must not outlive the failed change: the next reload or restart would serve v2.
    expect({ conf: await nginxConf(), routing: await routingFile(), doc: await doc(), served: fake.served() }).toEqual(before);
    expect(await live()).toBe('v1');
    expect(await exists(`${fake.dir}/edge/routing.previous`)).toBe(false);
  });

  it('never takes a stale copy from an earlier run for the previous routing', async () => {
    await switchVersion(control, 'v1');
    await switchVersion(control, 'v2');
    const routingPath = `${fake.dir}/edge/routing`;
    await writeFile(`${routingPath}.previous`, await routingFile());
    await rm(routingPath);
    fake.frozen = true;
    // no routing file before this change: the failed change leaves none, rather than the stale copy
    await expect(switchVersion(control, 'v1')).rejects.toMatchObject({ code: 'EDGE_APPLY_TIMEOUT', outcome: 'files-restored' });
    expect(await exists(routingPath)).toBe(false);
    expect(await exists(`${routingPath}.previous`)).toBe(false);
    expect((await doc()).live).toBe('v2');
  });
});

describe('--dry-run', () => {
  it('prints the state change and the nginx diff, and changes nothing (no lock, no file, no reload)', async () => {
    await switchVersion(control, 'v1');
    const before = { conf: await nginxConf(), doc: await doc(), served: fake.served() };
    const result = await switchVersion(control, 'v2', { dryRun: true });
    expect(result.change.changes).toEqual(['live: v1 -> v2', 'previous: (none) -> v1', 'history: + switch v2 (was v1)']);
    expect(result.change.nginxDiff).toMatch(/^-live v1$/m);
    expect(result.change.nginxDiff).toMatch(/^\+live v2$/m);
    expect(formatDryRun(result.change)).toMatch(/^Dry run of `depl switch v2`: nothing was changed\./);
    const canary = await setCanary(control, 'v3', 25, { dryRun: true });
    expect(canary.change.changes[0]).toBe('canary: (none) -> v3 at 25%');
    expect(canary.change.nginxDiff).toMatch(/^\+canary v3 25$/m);
    await expect(rollback(control, { dryRun: true })).rejects.toMatchObject({ code: 'NO_PREVIOUS' });
    expect({ conf: await nginxConf(), doc: await doc(), served: fake.served() }).toEqual(before);
  });

  it('rollback, canary and prune: each file the edge would change, nginx.conf only when it would change', async () => {
    await switchVersion(control, 'v1');
    await switchVersion(control, 'v2');
    const snapshot = async () => ({ conf: await nginxConf(), routing: await routingFile(), doc: await doc(), served: fake.served(), lock: await lockStatus(control.stateRemote, fake.app, control.stateRoot) });
    const before = await snapshot();
    const routingPath = `${fake.dir}/edge/routing`;
    const confPath = `${fake.dir}/edge/nginx.conf`;

    const back = (await rollback(control, { dryRun: true })).change;
    expect(back.changes[0]).toBe('live: v2 -> v1');
    expect(back.nginxDiff).toContain(`--- ${routingPath}\n+++ ${routingPath} (after depl rollback)\n`);
    expect(back.nginxDiff).toMatch(/^-live v2\n\+live v1$/m);
    expect(back.nginxDiff).not.toContain(`--- ${confPath}`);

    const split = (await setCanary(control, 'v3', 30, { dryRun: true })).change;
    expect(split.nginxDiff).toMatch(/^\+canary v3 30$/m);
    expect(split.nginxDiff).not.toContain(`--- ${confPath}`);

    const pruned = await withRelease(control, 'depl prune --keep 0', { dryRun: true }, (session) => session.change({ kind: 'prune', keep: 0 }));
    expect(pruned.prune?.remove.map((v) => v.label)).toEqual(['v3']);
    expect(pruned.nginxDiff).toMatch(/^-version v3 /m);
    expect(formatDryRun(pruned)).toMatch(/^Would remove: v3/m);

    // settings the edge does not run yet (here: HTTPS turned on) would rewrite nginx.conf too, server blocks and all
    const https = { ...control, site: { ...control.site, render: { ...control.site.render, tls: { port: 8443, challengeDir: `${fake.dir}/edge/challenges`, certificates: [{ id: fake.domain, names: [fake.domain], chain: `${fake.dir}/tls/fullchain.pem`, key: `${fake.dir}/tls/privkey.pem`, serial: '01' }] } } } };
    const secured = (await switchVersion(https, 'v1', { dryRun: true })).change;
    expect(secured.nginxDiff).toContain(`--- ${routingPath}\n`);
    expect(secured.nginxDiff).toContain(`--- ${confPath}\n+++ ${confPath} (after depl switch v1)\n`);
    expect(secured.nginxDiff).toMatch(new RegExp(`^\\+ +server_name ${fake.domain.replace(/\./g, '\\.')};$`, 'm'));
    expect(formatDryRun(secured)).toContain('Edge configuration (nginx):');

    expect(await snapshot()).toEqual(before);
  });
});

describe('an automatic canary', () => {
  it('holds the lock for the whole run, promotion included', async () => {
    await switchVersion(control, 'v1');
    const held: boolean[] = [];
    const log = `${fake.dir}/edge/logs/access.log`;
    const run = await runCanary(control, 'v2', {
      steps: [20, 100],
      intervalMs: 0,
      thresholds: { maxErrorRate: 0.01, maxP95Ms: 500, minRequests: 1 },
      sleep: async () => {
        held.push((await lockStatus(control.stateRemote, fake.app, control.stateRoot)) !== null);
        for (const version of ['v1', 'v2']) await appendFile(log, `{"msec":${(Date.now() / 1000).toFixed(3)},"host":"${fake.domain}","version":"${version}","status":200,"request_time":0.002,"upstream_time":"0.002","upstream_status":"200","upstream_addr":"x","method":"GET","uri":"/","bytes":1,"request_id":"r"}\n`);
      },
    });
    expect(run.outcome, run.reason).toBe('promoted');
    expect(held).toEqual([true, true]);
    expect(await doc()).toMatchObject({ live: 'v2', previous: 'v1', canary: null });
    expect((await doc()).history.map((h) => h.action)).toEqual(['switch', 'canary', 'canary', 'promote']);
    expect(await lockStatus(control.stateRemote, fake.app, control.stateRoot)).toBeNull();
  });
});

describe('a depl killed at any step of a switch', () => {
  it.each(KILL_POINTS)('%s: status and the served version agree, and the next switch needs no clean-up', async (point) => {
    await switchVersion(control, 'v1');
    await expect(switchVersion(fake.killAt(point), 'v2')).rejects.toBeInstanceOf(Killed);
    // The dead process never released its lock; its lease runs out (infra's lease; here broken by hand).
    await forceReleaseLock(control.stateRemote, fake.app, control.stateRoot);
    const next = fake.freshControl();
    const view = await readRelease(next);
    expect(view.state.live).toBe(await live());
    expect(view.interrupted).toBe(point !== 'after-lock');
    const servedBefore = await live();
    // Once the routing table is written the edge serves it (it polls the file): the change rolls forward.
    expect(servedBefore).toBe(point === 'after-lock' || point === 'after-intent' ? 'v1' : 'v2');
    // The next command repairs first, then does its own change.
    expect(await switchVersion(next, 'v3')).toMatchObject({ live: 'v3' });
    const after = await doc();
    expect(after).toMatchObject({ live: 'v3', previous: servedBefore, pending: null, edge: { generation: fake.served() } });
    expect(await routingFile()).toMatch(/^live v3$/m);
  });
});

describe('certificates in edge-touching commands', () => {
  it('are synced under the lock, after the state is read and before the change; a dry run syncs nothing', async () => {
    const calls: Array<{ versions: string[]; lockHeldBy: string | null }> = [];
    const syncing: ClusterPort = {
      ...control,
      async certificates(versions) {
        const held = await lockStatus(control.stateRemote, fake.app, control.stateRoot);
        calls.push({ versions, lockHeldBy: held?.holder?.command ?? null });
        return null;
      },
    };
    await switchVersion(syncing, 'v1');
    await setCanary(syncing, 'v2', 20, { dryRun: true });
    await setCanary(syncing, 'v2', 20);
    expect(calls).toEqual([
      { versions: ['v1', 'v2', 'v3'], lockHeldBy: 'depl switch v1' },
      { versions: ['v1', 'v2', 'v3'], lockHeldBy: 'depl canary v2 --weight 20' },
    ]);
  });

  it('HTTPS settings that changed are reloaded with the routing as it was, before the change', async () => {
    await switchVersion(control, 'v1');
    const routing = await routingFile();
    let synced = 0;
    const render: EdgeTlsRender = {
      port: 443, challengeDir: `${fake.dir}/edge/acme-challenge`,
      certificates: [{ id: fake.domain, names: [fake.domain], chain: `${fake.dir}/edge/tls/${fake.domain}/fullchain.pem`, key: `${fake.dir}/edge/tls/${fake.domain}/privkey.pem`, serial: '01' }],
    };
    const syncing: ClusterPort = { ...control, async certificates() { synced += 1; return { render }; } };
    await setCanary(syncing, 'v2', 20);
    expect(synced).toBe(1);
    expect(await nginxConf()).toContain(`server_name ${fake.domain};`);
    expect(await live()).toBe('v1');
    expect(await routingFile()).not.toBe(routing);
    expect((await doc()).canary).toEqual({ version: 'v2', weight: 20 });
  });
});

describe('branch deploys on the fake cluster', () => {
  /** What buildinst asks of the release state for `--branch`: its label from releaseTarget, the install request. */
  const deployBranch = (branch: string) => {
    const { version } = releaseTarget(fake.app, ['web', 'worker'], { branch }, new Date());
    const services = [`${fake.app}-${version}-web`, `${fake.app}-${version}-worker`];
    return withRelease(control, `depl buildinst --branch ${branch}`, {}, (session) =>
      session.change({ kind: 'install', version, branch, services, http: { service: services[0]!, port: 8080, health: '/healthz' } }));
  };
  /** The swarm now lists the branch's services, as buildinst's services would be labelled. */
  const installBranch = (branch: string) => {
    const { version } = releaseTarget(fake.app, ['web', 'worker'], { branch }, new Date());
    fake.versions.push({ ...fakeVersion(fake.app, version, '2026-11-29T00:00:00Z'), branch });
    return version;
  };
  const unchanged = async () => ({ routing: await routingFile(), doc: await doc() });

  it('gives feature/x, feature-x and Feature_X three versions, each redeployed only by its own branch', async () => {
    const labels = ['feature/x', 'feature-x', 'Feature_X'].map(installBranch);
    expect(labels).toEqual(['feature-x-217d2b', 'feature-x', 'feature-x-c6683d']);
    await syncRelease(control);
    for (const branch of ['feature/x', 'feature-x', 'Feature_X']) await deployBranch(branch);
    expect((await doc()).history.filter((h) => h.action === 'install').map((h) => `${h.version} (${h.note})`)).toEqual([
      'feature-x-217d2b (branch feature/x, redeployed)', 'feature-x (branch feature-x, redeployed)', 'feature-x-c6683d (branch Feature_X, redeployed)',
    ]);
    for (const label of labels) expect((await fake.get(`${label}.${fake.domain}`)).version).toBe(label);
  });

  it('refuses to redeploy over a version another branch owns, or one installed with --version, changing nothing', async () => {
    // a branch named as feature/x's label: the same label, another owner
    installBranch('feature/x');
    await syncRelease(control);
    const before = await unchanged();
    const other = await deployBranch('feature-x-217d2b').catch((e: unknown) => e);
    expect(other).toMatchObject({ code: 'VERSION_OTHER_BRANCH', exitCode: 2, message: expect.stringContaining('which belongs to branch "feature/x"') });
    expect((other as UserError).hint).toMatch(/Rename one of the two branches, or remove feature-x-217d2b first/);
    const plain = await deployBranch('v1').catch((e: unknown) => e);
    expect(plain).toMatchObject({ code: 'VERSION_NOT_BRANCH', exitCode: 2, message: expect.stringContaining('installed with --version v1') });
    expect(await unchanged()).toEqual(before);
  });

  it('never redeploys the previous version: the rollback target stays as it was', async () => {
    const label = installBranch('feature/x');
    await switchVersion(control, label);
    await switchVersion(control, 'v1');
    const before = await unchanged();
    const refused = await deployBranch('feature/x').catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'VERSION_PREVIOUS', exitCode: 2, message: expect.stringContaining('the one `depl rollback` returns to') });
    expect(await unchanged()).toEqual(before);
    expect(await rollback(control)).toMatchObject({ live: label });
  });
});

describe('release changes with the ACME server unreachable', () => {
  const DAY = 86_400_000;
  let ca: Server;
  let caConnections = 0;
  let certDir: string;
  beforeEach(async () => {
    caConnections = 0;
    // a CA that accepts connections and never answers: what made a rollback wait ~15 s per host
    ca = createServer((socket) => {
      caConnections += 1;
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => ca.listen(0, '127.0.0.1', resolve));
    certDir = await mkdtemp(path.join(tmpdir(), 'depl-unit-certs-'));
  });
  afterEach(async () => {
    await new Promise<void>((resolve) => ca.close(() => resolve()));
    await rm(certDir, { recursive: true, force: true });
  });

  /** A self-signed certificate for `host`, valid from now for `days`. */
  function selfSigned(host: string, days: number): { chain: string; key: string } {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${host}.key`, '-out', `${host}.pem`, '-days', String(days), '-subj', `/CN=${host}`, '-addext', `subjectAltName=DNS:${host}`], { cwd: certDir, stdio: 'pipe' });
    return { chain: readFileSync(path.join(certDir, `${host}.pem`), 'utf8'), key: readFileSync(path.join(certDir, `${host}.key`), 'utf8') };
  }

  it('switch, rollback, canary, promote, abort and a removal never call the CA, use what the store has, and leave expired certificates out', async () => {
    const { port } = ca.address() as AddressInfo;
    const loaded: LoadedConfig = {
      config: parseConfig(`app: ${fake.app}\ndomain: ${fake.domain}\nservices:\n  web: { image: web:1, port: 8080, http: true }\ntls: { mode: acme, email: ops@shop.test, directory: "https://127.0.0.1:${port}/directory" }\n`),
      file: path.join(fake.dir, 'depl.yaml'),
      root: fake.dir,
    };
    const store: TlsStore = { remote: control.stateRemote, accountDir: `${control.stateRoot}/${fake.app}/tls`, edgeDir: `${fake.dir}/edge` };
    // the live host's certificate is good for a month, v1's for a day, v3's for a month; v2 has none.
    await installCertificate(store, fake.domain, selfSigned(fake.domain, 30));
    await installCertificate(store, `v1.${fake.domain}`, selfSigned(`v1.${fake.domain}`, 1));
    await installCertificate(store, `v3.${fake.domain}`, selfSigned(`v3.${fake.domain}`, 30));
    // two days on: v1's has expired
    const now = () => Date.now() + 2 * DAY;
    const warnings: string[] = [];
    const log = { ...silentLogger, warn: (m: string) => warnings.push(m) };
    const withTls: ClusterPort = { ...control, log, certificates: (versions) => syncCertificatesForRelease(store, loaded.config, log, versions, now) };

    // each change is timed: none may wait on the CA (the old code waited ~15 s per host lacking a certificate)
    const slowest: number[] = [];
    const timed = async (change: () => Promise<unknown>) => {
      const started = performance.now();
      await change();
      slowest.push(performance.now() - started);
    };
    await timed(() => switchVersion(withTls, 'v1'));
    await timed(() => switchVersion(withTls, 'v2'));
    await timed(() => rollback(withTls));
    await timed(() => setCanary(withTls, 'v3', 20));
    await timed(() => abortCanary(withTls));
    await timed(() => setCanary(withTls, 'v2', 10));
    await timed(() => promoteCanary(withTls));
    await timed(() => withRelease(withTls, 'depl prune v3', {}, async (session) => {
      await session.change({ kind: 'remove', version: 'v3', note: 'test' });
      await session.syncCertificates();
    }));
    expect(caConnections).toBe(0);
    expect(Math.max(...slowest)).toBeLessThan(10_000);

    const conf = await nginxConf();
    expect(conf).toContain(`server_name ${fake.domain};`);
    // v1's expired certificate is out of the edge: no https server for it, and plain http does not redirect it
    expect(conf).not.toContain(`server_name v1.${fake.domain};`);
    expect(conf).not.toContain(`v1.${fake.domain} 1;`);
    expect(warnings).toContain(`v1.${fake.domain}: certificate EXPIRED ${new Date(Date.parse(new X509Certificate(readFileSync(path.join(certDir, `v1.${fake.domain}.pem`))).validTo)).toISOString()}; not served: plain HTTP until it is renewed`);
    // still in the store (a renewal replaces it); the removed version's certificate is gone; none was issued for v2
    expect((await listCertificates(store)).map((c) => c.id)).toEqual([fake.domain, `v1.${fake.domain}`]);
    expect((await fake.get(`v1.${fake.domain}`)).version).toBe('v1');

    // a renewal that succeeds later (the renewal task, depl tls renew) is served from the next change on
    await installCertificate(store, `v1.${fake.domain}`, selfSigned(`v1.${fake.domain}`, 30));
    await switchVersion(withTls, 'v1');
    expect(await nginxConf()).toContain(`server_name v1.${fake.domain};`);
    expect(caConnections).toBe(0);
  }, 120_000);
});

describe('a buildinst killed before its version was in', () => {
  const intentFor = (version: string, services: string[]): InstallIntent => ({
    schema: 1, app: fake.app, version, command: `depl buildinst --version ${version}`, by: 'ana@laptop', at: '2026-11-30T06:00:00.000Z', services, redeploy: false,
  });

  it('is removed by the next command that takes the lock: off the edge first, then its services', async () => {
    await switchVersion(control, 'v1');
    expect((await fake.get(`v3.${fake.domain}`)).version).toBe('v3');
    await writeInstallIntent(control.stateRemote, intentFor('v3', [`${fake.app}-v3-web`, `${fake.app}-v3-worker`]), control.stateRoot);
    const warnings: string[] = [];
    await switchVersion({ ...control, log: { ...control.log, warn: (m: string) => warnings.push(m) } }, 'v2');
    expect(warnings).toEqual([expect.stringMatching(/^repair: an interrupted `depl buildinst --version v3` \(ana@laptop, .*\) was installing version v3 and never finished; removing it/)]);
    expect(fake.versions.map((v) => v.label)).toEqual(['v1', 'v2']);
    expect((await fake.get(`v3.${fake.domain}`)).status).toBe(404);
    expect(await live()).toBe('v2');
    expect(await readInstallIntent(control.stateRemote, fake.app, control.stateRoot)).toBeNull();
    expect((await doc()).history.map((h) => `${h.action} ${h.version}${h.note ? ` (${h.note})` : ''}`)).toEqual(['switch v1', 'prune v3 (interrupted install)', 'switch v2 (was v1)']);
  });

  it('keeps a version that is live, and a dry run repairs nothing', async () => {
    await switchVersion(control, 'v1');
    await writeInstallIntent(control.stateRemote, intentFor('v1', [`${fake.app}-v1-web`]), control.stateRoot);
    await switchVersion(control, 'v2', { dryRun: true });
    expect(await readInstallIntent(control.stateRemote, fake.app, control.stateRoot)).not.toBeNull();
    await switchVersion(control, 'v2');
    expect(fake.versions.map((v) => v.label)).toEqual(['v1', 'v2', 'v3']);
    expect(await readInstallIntent(control.stateRemote, fake.app, control.stateRoot)).toBeNull();
  });

  it('a repair that is itself killed is finished by the next command', async () => {
    await switchVersion(control, 'v1');
    await writeInstallIntent(control.stateRemote, intentFor('v3', [`${fake.app}-v3-web`, `${fake.app}-v3-worker`]), control.stateRoot);
    await expect(switchVersion(fake.killAt('after-intent'), 'v2')).rejects.toBeInstanceOf(Killed);
    await forceReleaseLock(control.stateRemote, fake.app, control.stateRoot);
    await switchVersion(fake.freshControl(), 'v2');
    expect(fake.versions.map((v) => v.label)).toEqual(['v1', 'v2']);
    expect(await readInstallIntent(control.stateRemote, fake.app, control.stateRoot)).toBeNull();
    expect((await fake.get(`v3.${fake.domain}`)).status).toBe(404);
  });

  describe('when it was redeploying a branch', () => {
    const branch = 'feature/x';
    const label = 'feature-x-217d2b';
    const web = `shop-${label}-web`;
    const worker = `shop-${label}-worker`;
    const earlierSpec = (name: string) => ({ Name: name, Labels: { 'depl.app': 'shop', 'depl.version': label, 'depl.branch': branch }, TaskTemplate: { ContainerSpec: { Image: 'sha256:earlier' } } });
    const redeployIntent = (replaced: InstallIntent['replaced']): InstallIntent => ({
      schema: 1, app: fake.app, version: label, command: `depl buildinst --branch ${branch}`, by: 'ana@laptop', at: '2026-11-30T06:00:00.000Z',
      services: [web, worker, `shop-${label}-extra`], redeploy: true, ...(replaced !== undefined ? { replaced } : {}),
    });

    beforeEach(async () => {
      // the branch's earlier deploy, serving at its own host; the interrupted redeploy had added a service
      fake.versions.push({ ...fakeVersion(fake.app, label, '2026-11-29T00:00:00Z'), branch, services: [`shop-${label}-extra`, web, worker] });
      await syncRelease(control);
    });

    it('puts back the services it updated and removes what it added, so the earlier deploy keeps serving', async () => {
      await writeInstallIntent(control.stateRemote, redeployIntent([{ name: web, spec: earlierSpec(web) }, { name: worker, spec: earlierSpec(worker) }]), control.stateRoot);
      const warnings: string[] = [];
      await switchVersion({ ...control, log: { ...control.log, warn: (m: string) => warnings.push(m) } }, 'v1');
      expect(warnings).toEqual([`repair: an interrupted \`depl buildinst --branch ${branch}\` (ana@laptop, 2026-11-30T06:00:00.000Z) was redeploying version ${label} and never finished; putting back its earlier deploy (${web}, ${worker}) and removing what it added (shop-${label}-extra)`]);
      expect(fake.versions.find((v) => v.label === label)?.services).toEqual([web, worker]);
      expect([...fake.restoredSpecs.keys()]).toEqual([web, worker]);
      expect(fake.restoredSpecs.get(web)).toEqual(earlierSpec(web));
      expect((await fake.get(`${label}.${fake.domain}`)).version).toBe(label);
      expect(await readInstallIntent(control.stateRemote, fake.app, control.stateRoot)).toBeNull();
      expect((await doc()).history.filter((h) => h.version === label)).toEqual([]);
    });

    it('where the swarm cannot take a spec, reports it and leaves the deploy and the intent for the next buildinst', async () => {
      await writeInstallIntent(control.stateRemote, redeployIntent([{ name: web, spec: earlierSpec(web) }]), control.stateRoot);
      const warnings: string[] = [];
      const { restore: _restore, ...cliOnly } = control.swarm!;
      await switchVersion({ ...control, swarm: cliOnly, log: { ...control.log, warn: (m: string) => warnings.push(m) } }, 'v1');
      expect(warnings).toEqual([expect.stringMatching(/was redeploying version feature-x-217d2b and never finished; this command cannot put its earlier deploy back .* until the next `depl buildinst`/)]);
      expect(fake.versions.find((v) => v.label === label)?.services).toHaveLength(3);
      expect((await fake.get(`${label}.${fake.domain}`)).version).toBe(label);
      expect(await readInstallIntent(control.stateRemote, fake.app, control.stateRoot)).not.toBeNull();
    });

    it('an intent that does not say what the services were keeps them as they are', async () => {
      await writeInstallIntent(control.stateRemote, redeployIntent(undefined), control.stateRoot);
      await switchVersion(control, 'v1');
      expect(fake.versions.find((v) => v.label === label)?.services).toHaveLength(3);
      expect((await fake.get(`${label}.${fake.domain}`)).version).toBe(label);
      expect(await readInstallIntent(control.stateRemote, fake.app, control.stateRoot)).toBeNull();
    });
  });
});
