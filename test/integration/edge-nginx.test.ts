import { readFile, stat, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyEdgeConfig, EdgeApplyError } from '../../src/apply/edge/config.js';
import { readSiteLogs } from '../../src/apply/edge/logs.js';
import { edgeReport, requestThroughEdge } from '../../src/apply/edge/site.js';
import { readReleaseDocument } from '../../src/apply/release-store.js';
import { routingFor } from '../../src/plan/release-state.js';
import { syncRelease } from '../../src/workflows/release.js';
import { pollUntil } from '../../src/util/poll.js';
import { computeStats } from '../../src/plan/stats.js';
import { renderEdgeApps } from '../../src/plan/edge-apps.js';
import { parseEdgeReport } from '../../src/plan/edge-routing.js';
import { CONFIG_PROBE_PATH, configGeneration, PROBE_HOST } from '../../src/plan/nginx.js';
import { abortCanary, promoteCanary, runCanary, setCanary } from '../../src/workflows/canary.js';
import type { ClusterPort } from '../../src/workflows/cluster-port.js';
import { rollback } from '../../src/workflows/rollback.js';
import { edgeStats } from '../../src/workflows/stats.js';
import { switchVersion } from '../../src/workflows/switch.js';
import { localControl, startLocalEdge, startVersionServer, type LocalEdge, type VersionServer } from '../support/local-edge.js';

/** Real nginx (Debian's) on loopback, configured through depl's renderer, applier and workflows. */
const app = `e${process.pid}`;
const domain = 'shop.test';
let edge: LocalEdge;
let v1: VersionServer;
let v2: VersionServer;
let control: ClusterPort;
/** A version server installed for one test. */
let extra: VersionServer | undefined;

/** The routing the recorded release state renders to. */
async function recordedRouting() {
  const doc = await readReleaseDocument(edge.site.remote, app, control.stateRoot);
  return routingFor(doc, app, domain, (await control.installed()));
}

beforeAll(async () => {
  edge = await startLocalEdge(app);
  v1 = await startVersionServer(app, 'v1');
  v2 = await startVersionServer(app, 'v2', { failPath: '/fail' });
  await applyEdgeConfig(edge.site, { app, domain, versions: [v1.edgeVersion, v2.edgeVersion] });
  control = localControl(edge, app, domain, () => [v1, v2, extra]);
});

afterAll(async () => {
  await edge?.stop();
  await Promise.all([v1, v2].map((s) => s?.stop()));
});

const get = (host: string, path = '/') => requestThroughEdge(edge.site, host, path);
/** Waits for a condition (true or a value) or fails naming what never happened. */
const until = <T>(check: () => T | false | undefined | Promise<T | false | undefined>, what: string) =>
  pollUntil(async () => (await check()) || undefined, { timeoutMs: 15_000, intervalMs: 25, onTimeout: () => { throw new Error(`timed out waiting for ${what}`); } });
const workerPids = async () => (await execa('ps', ['-o', 'pid=', '--ppid', String(edge.pid)])).stdout.split('\n').map((p) => p.trim()).filter(Boolean).sort();

describe('the edge on real nginx', () => {
  it('serves each version at its own hostname with an X-Depl-Version header', async () => {
    const one = await get(`v1.${domain}`, '/hello');
    expect(one).toMatchObject({ status: 200, version: 'v1' });
    expect(JSON.parse(one.body)).toMatchObject({ version: 'v1', path: '/hello' });
    const two = await get(`v2.${domain}`);
    expect(two).toMatchObject({ status: 200, version: 'v2' });
    expect((await get(`v2.${domain}`, '/fail')).status).toBe(500);
    expect((await get(`v2.${domain}`, '/fail')).version).toBe('v2');
  });

  it('answers 404 for unknown hosts, and for the domain while nothing is live', async () => {
    expect((await get('nobody.example')).status).toBe(404);
    expect((await get(`v9.${domain}`)).status).toBe(404);
    expect((await get(domain)).status).toBe(404);
  });

  it('switches live atomically: requests during the switch get the old or the new version, never an error', async () => {
    await switchVersion(control, 'v1');
    expect(await get(domain)).toMatchObject({ status: 200, version: 'v1' });
    const seen: { sentAt: number; answer: string }[] = [];
    let stop = false;
    const hammer = (async () => {
      while (!stop) {
        const sentAt = performance.now();
        const answer = await get(domain);
        seen.push({ sentAt, answer: `${answer.status} ${answer.version}` });
      }
    })();
    await until(() => seen.length >= 10, 'requests answered before the switch');
    const result = await switchVersion(control, 'v2');
    const switched = performance.now();
    await until(() => seen.filter((s) => s.sentAt > switched).length >= 20, 'requests answered after the switch');
    stop = true;
    await hammer;
    expect(result).toMatchObject({ live: 'v2', previous: 'v1' });
    expect(new Set(seen.map((s) => s.answer))).toEqual(new Set(['200 v1', '200 v2']));
    // Once the command has returned, only the new version answers: no old workers are left to drain.
    const after = seen.filter((s) => s.sentAt > switched);
    expect(after.length).toBeGreaterThan(10);
    expect(new Set(after.map((s) => s.answer))).toEqual(new Set(['200 v2']));
    const state = await readReleaseDocument(edge.site.remote, app, control.stateRoot);
    expect(state).toMatchObject({ live: 'v2', previous: 'v1', canary: null });
  });

  it('rolls back to the previous version', async () => {
    expect(await rollback(control)).toMatchObject({ live: 'v1', previous: 'v2' });
    expect((await get(domain)).version).toBe('v1');
    const state = await readReleaseDocument(edge.site.remote, app, control.stateRoot);
    expect(state.history.map((h: { action: string; version: string | null }) => `${h.action} ${h.version}`)).toEqual(['switch v1', 'switch v2', 'rollback v1']);
  });

  it('never reloads a configuration nginx rejects, and says what nginx said', async () => {
    const liveBefore = await readFile(`${edge.dir}/nginx.conf`, 'utf8');
    const stateBefore = await recordedRouting();
    const reportBefore = parseEdgeReport((await get(PROBE_HOST, CONFIG_PROBE_PATH)).body);
    // A log directory that does not exist: the renderer accepts the path, nginx -t does not.
    const broken = { ...edge.site, render: { ...edge.site.render, paths: { ...edge.site.render.paths, errorLog: `${edge.dir}/missing/error.log` } } };
    await expect(applyEdgeConfig(broken, { ...stateBefore!, live: 'v2' })).rejects.toThrow(/nginx rejected the new edge configuration; the running one is unchanged:\n.*missing\/error.log.*No such file/s);
    expect(await readFile(`${edge.dir}/nginx.conf`, 'utf8')).toBe(liveBefore);
    expect(await stat(`${edge.dir}/nginx.conf.rejected`)).toBeTruthy();
    // neither the configuration nor the routing changed: the switch to v2 it carried did not happen
    expect(parseEdgeReport((await get(PROBE_HOST, CONFIG_PROBE_PATH)).body)).toEqual(reportBefore);
    expect(reportBefore.config).toBe(configGeneration({ app }, edge.site.render));
    expect((await get(domain)).version).toBe('v1');
  });

  it('puts the previous routing back when the reload that came with it fails, and says the edge serves it only once it does', async () => {
    // v1 live (as the rollback above left it; set here when this case runs alone)
    const start = { ...(await recordedRouting())!, live: 'v1' };
    await applyEdgeConfig(edge.site, start);
    const liveBefore = await readFile(`${edge.dir}/nginx.conf`, 'utf8');
    const routingBefore = await readFile(`${edge.dir}/routing`, 'utf8');
    const reportBefore = parseEdgeReport((await get(PROBE_HOST, CONFIG_PROBE_PATH)).body);
    expect((await get(domain)).version).toBe('v1');
    // settings nginx accepts (one more worker) need a reload, and the first reload fails after the routing file
    // was written; the one that puts the previous settings back works
    const failedOnce = `${edge.dir}/reload-failed-once`;
    const failing = {
      ...edge.site,
      reload: ['sh', '-c', `[ -e ${failedOnce} ] || { touch ${failedOnce}; echo reload refused >&2; exit 1; }; kill -HUP ${edge.pid}`],
      render: { ...edge.site.render, workerProcesses: 3 },
    };
    const error = await applyEdgeConfig(failing, { ...start, live: 'v2' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EdgeApplyError);
    expect((error as EdgeApplyError).outcome).toBe('restored');
    expect((error as EdgeApplyError).message).toMatch(/reload refused.*; the previous configuration was put back and reloaded; the previous routing \S+ and settings were put back and the edge serves it$/s);
    // what depl says is what is there: the previous files, served
    expect(await readFile(`${edge.dir}/routing`, 'utf8')).toBe(routingBefore);
    expect(await readFile(`${edge.dir}/nginx.conf`, 'utf8')).toBe(liveBefore);
    expect(parseEdgeReport((await get(PROBE_HOST, CONFIG_PROBE_PATH)).body)).toEqual(reportBefore);
    expect((await get(domain)).version).toBe('v1');
  });

  it('splits live traffic for a canary by a stable client key, and promotes or aborts it', async () => {
    await setCanary(control, 'v2', 30);
    const sides = new Map<string, string>();
    for (let client = 0; client < 400; client++) {
      const answer = await requestThroughEdgeWithCookie(`c${client}`);
      sides.set(`c${client}`, answer);
    }
    const share = [...sides.values()].filter((v) => v === 'v2').length / sides.size;
    expect(share).toBeGreaterThan(0.22);
    expect(share).toBeLessThan(0.38);
    for (const client of ['c1', 'c2', 'c3', 'c4', 'c5']) {
      for (let i = 0; i < 5; i++) expect(await requestThroughEdgeWithCookie(client)).toBe(sides.get(client));
    }
    expect((await readReleaseDocument(edge.site.remote, app, control.stateRoot)).canary).toEqual({ version: 'v2', weight: 30 });
    await abortCanary(control);
    for (const client of ['c1', 'c2', 'c3']) expect(await requestThroughEdgeWithCookie(client)).toBe('v1');
    await setCanary(control, 'v2', 50);
    expect(await promoteCanary(control)).toMatchObject({ live: 'v2', previous: 'v1' });
    for (const client of ['c1', 'c2', 'c3']) expect(await requestThroughEdgeWithCookie(client)).toBe('v2');
    expect(await readReleaseDocument(edge.site.remote, app, control.stateRoot)).toMatchObject({ live: 'v2', previous: 'v1', canary: null });
  });

  it('installs a version, switches and splits traffic without touching the nginx configuration or its workers', async () => {
    const conf = await readFile(`${edge.dir}/nginx.conf`, 'utf8');
    const workers = await workerPids();
    const v3 = await startVersionServer(app, 'v3');
    try {
      extra = v3;
      await syncRelease(control, 'depl buildinst --version v3');
      expect(await get(`v3.${domain}`)).toMatchObject({ status: 200, version: 'v3' });
      const live = (await switchVersion(control, 'v3'));
      // the routing table changed in place: no nginx check, no reload
      expect(live.change.applied?.reloaded).toBe(false);
      expect(live.phases.reload).toBeUndefined();
      expect(await get(domain)).toMatchObject({ status: 200, version: 'v3' });
      await setCanary(control, 'v2', 40);
      await abortCanary(control);
      await rollback(control);
      expect(await get(domain)).toMatchObject({ status: 200, version: 'v2' });
      expect(await readFile(`${edge.dir}/nginx.conf`, 'utf8')).toBe(conf);
      expect(await workerPids()).toEqual(workers);
      extra = undefined;
      await syncRelease(control, 'depl prune');
      expect((await get(`v3.${domain}`)).status).toBe(404);
    } finally {
      await v3.stop();
    }
  });

  it('keeps serving the last good routing when the routing file is torn, and says so in the error log', async () => {
    const good = await readFile(`${edge.dir}/routing`, 'utf8');
    const report = parseEdgeReport((await get(PROBE_HOST, CONFIG_PROBE_PATH)).body);
    await writeFile(`${edge.dir}/routing`, good.replace('\nend\n', '\n').replace(/^live .*$/m, 'live v1'));
    // the probe re-reads the file, and so does the poll every 50 ms: both refuse it and say so
    expect(parseEdgeReport((await get(PROBE_HOST, CONFIG_PROBE_PATH)).body)).toEqual(report);
    await until(async () => /depl: ignoring .*routing: no end line/.test(await readFile(`${edge.dir}/logs/error.log`, 'utf8')), 'the torn routing file named in the error log');
    expect((await get(domain)).version).toBe('v2');
    await writeFile(`${edge.dir}/routing`, good);
  });

  it('comes back from a restart serving the recorded routing from its first answer', async () => {
    const answers: string[] = [];
    let refused = 0;
    let stop = false;
    const hammer = (async () => {
      while (!stop) {
        const answer = await get(domain).catch(() => null);
        if (answer === null) refused++;
        else answers.push(`${answer.status} ${answer.version}`);
      }
    })();
    await until(() => answers.length >= 5, 'answers before the restart');
    const answersBefore = answers.length;
    await edge.restart();
    const restartedAt = answers.length;
    await until(() => answers.length >= restartedAt + 10, 'answers after the restart');
    stop = true;
    await hammer;
    expect(answersBefore).toBeGreaterThan(0);
    expect(answers.length).toBeGreaterThan(restartedAt);
    expect(new Set(answers)).toEqual(new Set(['200 v2']));
    console.log(`edge restart: ${answers.length} answers, all from v2; ${refused} refused while nginx was down`);
  });

  it('logs JSON lines that stats turns into per-version figures', async () => {
    // Only this test's requests are counted (a connection nginx still lingers on from an earlier test is
    // logged when it closes, inside this window): their paths end in a mark no other test sends (the log
    // has the path without the query).
    const mark = `stats-${process.pid}-${Date.now()}`;
    const since = Date.now();
    for (let i = 0; i < 20; i++) await get(`v1.${domain}`, `/a${i}-${mark}`);
    for (let i = 0; i < 10; i++) await get(`v2.${domain}`, `${i < 3 ? '/fail' : '/ok'}-${mark}`);
    await get('nobody.example', `/${mark}`);
    // nginx writes the log line after the response has gone out
    const lines = await until(async () => {
      const ours = (await readSiteLogs(edge.site, since)).filter((l) => l.includes(mark));
      return ours.length === 31 ? ours : undefined;
    }, 'the 31 access log lines of this test');
    const report = computeStats(lines, { sinceMs: since, untilMs: Date.now() });
    expect(report.unparsed).toBe(0);
    expect(report.unrouted).toBe(1);
    const byVersion = Object.fromEntries(report.versions.map((v) => [v.version, v]));
    expect(byVersion.v1).toMatchObject({ requests: 20, errors: 0, errorRate: 0 });
    expect(byVersion.v2).toMatchObject({ requests: 10, errors: 3, errorRate: 0.3 });
    expect(byVersion.v1!.p99Ms).toBeGreaterThanOrEqual(byVersion.v1!.p50Ms);
    const stats = await edgeStats(control, 60_000);
    expect(stats.live).toBe('v2');
    expect(stats.versions[0]!.version).toBe('v2');
  });

  it('rotates a large access log and still reads the window across both files', async () => {
    const since = Date.now() - 60_000;
    const before = (await readSiteLogs(edge.site, since)).length;
    await applyEdgeConfig({ ...edge.site, rotateLogBytes: 1 }, await recordedRouting());
    expect(await stat(`${edge.dir}/logs/access.log.1`)).toBeTruthy();
    for (let i = 0; i < 5; i++) await get(`v1.${domain}`, '/after-rotation');
    // Each worker reopens the log when it handles the master's signal: a request may still land in the old
    // file just after the rotation, and reading covers both files.
    const lines = await until(async () => {
      const all = await readSiteLogs(edge.site, since);
      return all.filter((l) => l.includes('/after-rotation')).length === 5 ? all : undefined;
    }, 'the 5 requests after the rotation in the logs');
    expect(lines.length).toBeGreaterThanOrEqual(before + 5);
    for (let i = 0; i < 50 && !(await readFile(`${edge.dir}/logs/access.log`, 'utf8')).includes('/reopened'); i++) await get(`v1.${domain}`, '/reopened');
    expect(await readFile(`${edge.dir}/logs/access.log`, 'utf8')).toContain('/reopened');
  });

  it('aborts an automatic canary whose version answers 500, with the figures that decided it', async () => {
    // v2 answers 500 on /fail, v1 does not: a quarter of the traffic asks for /fail.
    await switchVersion(control, 'v1');
    let traffic = true;
    const load = (async () => {
      let i = 0;
      while (traffic) {
        // Background traffic only; a keep-alive connection closed by a retiring worker is not this test's subject.
        await requestThroughEdgeWithCookie(`u${i % 50}`, i % 4 === 0 ? '/fail' : '/').catch(() => null);
        i++;
      }
    })();
    try {
      const run = await runCanary(control, 'v2', { steps: [20, 50, 100], intervalMs: 1_500, thresholds: { maxErrorRate: 0.01, maxP95Ms: 500, minRequests: 5 } });
      expect(run.outcome).toBe('aborted');
      expect(run.steps).toHaveLength(1);
      expect(run.reason).toMatch(/canary v2 5xx rate \d+(\.\d+)?% \(\d+ of \d+\) is above the limit 1% \(live v1: 0% 5xx/);
      expect(run.steps[0]!.decision.canary!.errorRate).toBeGreaterThan(0.1);
    } finally {
      traffic = false;
      await load;
    }
    expect(await readReleaseDocument(edge.site.remote, app, control.stateRoot)).toMatchObject({ live: 'v1', canary: null });
    for (let i = 0; i < 20; i++) expect(await requestThroughEdgeWithCookie(`u${i}`)).toBe('v1');
  });

  it('promotes an automatic canary whose figures hold at every step', async () => {
    let traffic = true;
    const load = (async () => {
      let i = 0;
      while (traffic) {
        await requestThroughEdgeWithCookie(`p${i % 40}`).catch(() => null);
        i++;
      }
    })();
    try {
      // the latency bound is loose on purpose: what holds here is that the version answers without errors; a
      // 2-core machine running the suite's other lane pushed the p95 past 500 ms and the canary was aborted
      const run = await runCanary(control, 'v2', { steps: [50, 100], intervalMs: 1_000, thresholds: { maxErrorRate: 0.01, maxP95Ms: 5_000, minRequests: 5 } });
      expect(run.outcome, JSON.stringify(run.steps.map((s) => s.decision))).toBe('promoted');
      expect(run.steps.map((s) => [s.weight, s.decision.action])).toEqual([[50, 'continue'], [100, 'continue']]);
    } finally {
      traffic = false;
      await load;
    }
    expect(await readReleaseDocument(edge.site.remote, app, control.stateRoot)).toMatchObject({ live: 'v2', previous: 'v1', canary: null });
    expect((await get(domain)).version).toBe('v2');
  });

  it('takes over an edge whose configuration has no routing table with one graceful reload, serving the routing at once', async () => {
    const state = await recordedRouting();
    const { paths, listen } = edge.site.render;
    // what an edge from before the routing table looks like to depl: another configuration generation
    await writeFile(`${edge.dir}/nginx.conf`, [
      `pid ${paths.pid};`, `error_log ${paths.errorLog} warn;`, 'events {}', 'http {',
      `  access_log off; client_body_temp_path ${paths.temp}/client_body; proxy_temp_path ${paths.temp}/proxy;`,
      `  fastcgi_temp_path ${paths.temp}/fastcgi; uwsgi_temp_path ${paths.temp}/uwsgi; scgi_temp_path ${paths.temp}/scgi;`,
      `  server { listen ${listen.address}:${listen.port} default_server; location = ${CONFIG_PROBE_PATH} { return 200 "0badf00d\\n"; } location / { return 404; } }`,
      '}', '',
    ].join('\n'));
    const routingWorkers = await workerPids();
    await execa('kill', ['-HUP', String(edge.pid)]);
    // until the workers that still route have exited: a new connection may reach one of them until it has taken
    // the master's QUIT, so two plain answers in a row do not prove they are gone
    await until(async () => (await workerPids()).every((pid) => !routingWorkers.includes(pid)), 'the old workers gone');
    expect(parseEdgeReport((await get(PROBE_HOST, CONFIG_PROBE_PATH)).body).config).toBe('0badf00d');
    expect((await get(domain)).status).toBe(404);
    const applied = await applyEdgeConfig(edge.site, state);
    expect(applied.reloaded).toBe(true);
    expect(await get(domain)).toMatchObject({ status: 200, version: state.live });
    expect(parseEdgeReport((await get(PROBE_HOST, CONFIG_PROBE_PATH)).body)).toEqual({ config: configGeneration({ app }, edge.site.render), routing: applied.generation });
  });
});

async function requestThroughEdgeWithCookie(client: string, path = '/'): Promise<string> {
  const answer = await request(`${edge.site.url}${path}`, { headers: { host: domain, cookie: `depl_client=${client}` } });
  await answer.body.text();
  return String(answer.headers['x-depl-version']);
}

describe('the routing probe on real nginx', () => {
  it('answers loopback, and refuses an address outside the ones it allows, however it is asked', async () => {
    // the probe as nginx renders it for the cluster answers loopback (the edge above answered it all along)
    expect((await edgeReport(edge.site)).status).toBe(200);
    // an edge that allows one private address only: this machine's loopback is then outside, as an operator is
    const strict = await startLocalEdge(`p${process.pid}`, { probeAllow: ['10.9.9.9/32'] });
    try {
      const direct = await requestThroughEdge(strict.site, PROBE_HOST, CONFIG_PROBE_PATH);
      expect(direct.status).toBe(403);
      expect(direct.body).not.toMatch(/^[0-9a-f]{8} /);
      // asked from the edge's machine instead (bash /dev/tcp), it is still loopback here, so still refused
      expect((await edgeReport(strict.site)).status).toBe(403);
    } finally {
      await strict.stop();
    }
  });
});

describe("the cluster's edge on real nginx: several apps, each with its own routing table", () => {
  const gitea = `g${process.pid}`;
  const api = `a${process.pid}`;
  let shared: LocalEdge;
  let servers: VersionServer[] = [];
  /** The edge as one app's commands see it: its own table, its own generation at the probe. */
  const siteOf = (name: string) => ({ ...shared.site, probeApp: name });
  const at = (host: string) => requestThroughEdge(shared.site, host, '/');
  const listApps = (apps: { app: string; domain: string }[]) => writeFile(`${shared.dir}/apps`, renderEdgeApps(apps));

  beforeAll(async () => {
    shared = await startLocalEdge(gitea, { cluster: true });
    servers = await Promise.all([startVersionServer(gitea, 'g1'), startVersionServer(api, 'a1'), startVersionServer(api, 'a2')]);
  });
  afterAll(async () => {
    await shared?.stop();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('routes each app at its own hosts, and a switch of one leaves the other untouched', async () => {
    const [g1, a1, a2] = servers as [VersionServer, VersionServer, VersionServer];
    await listApps([{ app: gitea, domain: 'git.lab.test' }, { app: api, domain: 'api.lab.test' }]);
    const giteaApplied = await applyEdgeConfig(siteOf(gitea), { app: gitea, domain: 'git.lab.test', live: 'g1', versions: [g1.edgeVersion] });
    // the edge started with the cluster's settings: no app's table reloads them, each is read live
    expect(giteaApplied.reloaded).toBe(false);
    const apiApplied = await applyEdgeConfig(siteOf(api), { app: api, domain: 'api.lab.test', live: 'a1', versions: [a1.edgeVersion, a2.edgeVersion] });
    expect(apiApplied.reloaded).toBe(false);
    expect(await at('git.lab.test')).toMatchObject({ status: 200, version: 'g1' });
    expect(await at('g1.git.lab.test')).toMatchObject({ status: 200, version: 'g1' });
    expect(await at('api.lab.test')).toMatchObject({ status: 200, version: 'a1' });
    expect(await at('a2.api.lab.test')).toMatchObject({ status: 200, version: 'a2' });
    // another app's version label under this app's domain is not routed
    expect((await at('a2.git.lab.test')).status).toBe(404);
    expect((await at('lab.test')).status).toBe(404);

    // gitea answers every request while the api switches, and its generation never moves
    const giteaBefore = (await edgeReport(siteOf(gitea))).routing;
    const workers = await execa('ps', ['-o', 'pid=', '--ppid', String(shared.pid)]);
    let stop = false;
    const answers: (number | string)[] = [];
    const load = (async () => {
      while (!stop) {
        const answer = await at('git.lab.test');
        answers.push(answer.status === 200 ? String(answer.version) : answer.status);
      }
    })();
    const switched = await applyEdgeConfig(siteOf(api), { app: api, domain: 'api.lab.test', live: 'a2', versions: [a1.edgeVersion, a2.edgeVersion] });
    stop = true;
    await load;
    expect(switched.reloaded).toBe(false);
    expect(await at('api.lab.test')).toMatchObject({ status: 200, version: 'a2' });
    expect(answers.length).toBeGreaterThan(0);
    expect(new Set(answers)).toEqual(new Set(['g1']));
    expect((await edgeReport(siteOf(gitea))).routing).toBe(giteaBefore);
    // no reload: the same workers serve
    expect((await execa('ps', ['-o', 'pid=', '--ppid', String(shared.pid)])).stdout).toBe(workers.stdout);
  });

  it("keeps one app's last good table when its file is torn or names a host it did not claim, and the other's as it is", async () => {
    const apiFile = `${shared.dir}/routes/${api}`;
    const good = await readFile(apiFile, 'utf8');
    const giteaGeneration = (await edgeReport(siteOf(gitea))).routing;
    await writeFile(apiFile, good.replace(/\nend\n$/, '\n'));
    await until(async () => (await readFile(`${shared.dir}/logs/error.log`, 'utf8')).includes(`ignoring ${apiFile}: no end line`), 'the torn table logged');
    expect(await at('api.lab.test')).toMatchObject({ status: 200, version: 'a2' });
    // a table for the other app's domain: refused, so one app cannot take another's traffic by writing a table
    await writeFile(apiFile, good.replace('domain api.lab.test', 'domain git.lab.test').replace(/generation \S+/, 'generation 0000beef'));
    await until(async () => (await readFile(`${shared.dir}/logs/error.log`, 'utf8')).includes('is not the one app'), 'the unclaimed domain logged');
    expect(await at('git.lab.test')).toMatchObject({ status: 200, version: 'g1' });
    expect(await at('api.lab.test')).toMatchObject({ status: 200, version: 'a2' });
    expect((await edgeReport(siteOf(gitea))).routing).toBe(giteaGeneration);
    await writeFile(apiFile, good);
  });

  it('stops routing an app taken off the list, and serves the others from a restart on', async () => {
    await listApps([{ app: gitea, domain: 'git.lab.test' }]);
    await until(async () => (await at('api.lab.test')).status === 404, "the api's hosts no longer routed");
    expect((await edgeReport(siteOf(api))).routing).toBeNull();
    expect(await at('git.lab.test')).toMatchObject({ status: 200, version: 'g1' });
    await shared.restart();
    expect(await at('git.lab.test')).toMatchObject({ status: 200, version: 'g1' });
    expect((await at('a2.api.lab.test')).status).toBe(404);
  });
});
