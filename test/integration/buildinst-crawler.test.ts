import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeThroughEdge } from '../../src/apply/health.js';
import { ensureBaseTarballs } from '../../src/apply/base-images.js';
import { writeReleaseDocument } from '../../src/apply/release-store.js';
import { emptyReleaseState, toDocument } from '../../src/plan/release-state.js';
import { listServices } from '../../src/apply/swarm.js';
import { managerEngine } from '../../src/apply/docker.js';
import type { LoadedConfig } from '../../src/config/load.js';
import { OperationError, UserError } from '../../src/errors.js';
import { silentLogger, createLogger } from '../../src/util/log.js';
import { buildinst, type BuildinstResult } from '../../src/workflows/buildinst.js';
import { listVersions } from '../../src/workflows/versions.js';
import { buildinstInputsFor, clusterAccessFor, pruneInputsFor } from '../../src/workflows/command-inputs.js';
import { prune } from '../../src/workflows/prune.js';
import { runCli } from '../support/cli.js';
import { crawlerDeployment } from '../support/crawler-deployment.js';
import { keepCrawlerBuildCache, seedCrawlerBuildCache } from '../support/build-cache.js';
import { startTestCluster, type TestCluster } from '../support/cluster.js';
import { generateMissingSecrets } from '../../src/apply/secrets-store.js';
import { waitFor } from '../support/wait.js';
import { lockStatus } from '../../src/apply/lock.js';

const log = process.env.DEPL_TEST_VERBOSE ? createLogger({ verbose: true }) : silentLogger;

describe('depl buildinst deploys the crawler on a local swarm', () => {
  let test: TestCluster;
  let loaded: LoadedConfig;
  let first: BuildinstResult;
  const edge = () => `http://${test.cluster.managerNode.address}:80`;
  const health = (version: string) => probeThroughEdge(edge(), `${version}.${loaded.config.domain}`, '/healthz', 3_000);

  beforeAll(async () => {
    // The offline base images' rootfs is built once per machine (debootstrap, minutes on a fresh one): here,
    // next to the cluster's start, rather than inside the first buildinst and its test timeout.
    const [cluster] = await Promise.all([
      startTestCluster({ nodes: 3, app: 'shop', config: await crawlerDeployment('shop') }),
      ensureBaseTarballs(log),
    ]);
    test = cluster;
    loaded = test.loaded;
    await seedCrawlerBuildCache(test, log);
    // what depl init does: a random API token and Redis password in .depl/secrets
    await generateMissingSecrets(test.dir, loaded.config.secrets, new Date());
  });

  afterAll(async () => {
    try {
      if (test !== undefined) await keepCrawlerBuildCache(test, log);
    } finally {
      await test?.stop();
    }
  });

  it('installs a version reachable at <version>.<domain> through the edge', async () => {
    first = await buildinst(buildinstInputsFor(loaded), { version: 'v1', cluster: test.cluster }, log);
    expect(first.version).toBe('v1');
    expect(first.url).toBe('http://v1.shop.localhost/');
    expect(first.services).toEqual(['shop-v1-api', 'shop-v1-worker']);
    const { build, distribute, install, total } = first.timings;
    process.stderr.write(`buildinst v1 (first on this cluster): ${(total / 1000).toFixed(1)} s (build ${build} ms, distribute ${distribute} ms, install ${install} ms)\n`);
    const answer = await health('v1');
    expect(answer.status).toBe(200);
    expect(answer.version).toBe('v1');
    process.stderr.write(`crawler API /healthz through the edge: ${answer.body.trim()}\n`);
    expect(() => JSON.parse(answer.body)).not.toThrow();
    // the API reaches the redis accessory by its service name across the overlay network
    const ready = await probeThroughEdge(edge(), 'v1.shop.localhost', '/readyz', 3_000);
    expect(ready.status, ready.body).toBe(200);
  }, 480_000);

  it('ships a runtime image with node, production dependencies and the compiled crawler only', async () => {
    const inImage = async (script: string) => (await test.cluster.manager.exec(['docker', 'run', '--rm', '--entrypoint', 'sh', 'shop/api:v1', '-c', script])).stdout.trim();
    expect(await inImage('for t in gcc cc g++ make python3 tsc; do command -v $t || true; done; ls -d node_modules/typescript node_modules/vitest 2>/dev/null || true')).toBe('');
    expect(await inImage('ls dist')).toBe('crawler');
    expect(await inImage('ls dist/crawler/api/server.js dist/crawler/worker/main.js')).toBe('dist/crawler/api/server.js\ndist/crawler/worker/main.js');
    expect(await inImage('node --version')).toMatch(/^v2\d\./);
    expect(await inImage('id -un')).toBe('nobody');
    // the crawler's own dependencies only (its workspace package), none of depl's
    const packages = (await inImage('cd node_modules && ls -d [!@]* @*/*')).split('\n');
    expect(packages).toEqual(expect.arrayContaining(['htmlparser2', 'ioredis', 'ipaddr.js', 'undici', 'zod']));
    expect(packages.filter((p) => ['ssh2', 'dockerode', 'commander', 'execa', 'yaml', '@inquirer/prompts', 'typescript', '@types/node'].includes(p))).toEqual([]);
    // 44 on 2026-12-06: the crawler's libraries and their own (warcio, for WACZ export, brings its CLI's yargs)
    expect(packages.length).toBeLessThan(50);
    const size = Number(await inImage('du -sk /app | cut -f1'));
    process.stderr.write(`crawler runtime image: ${packages.length} packages, /app ${(size / 1024).toFixed(1)} MiB\n`);
  });

  it('installs a second version while the first keeps serving; a concurrent run is refused naming the lock holder', async () => {
    let failures = 0;
    let probes = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        probes += 1;
        const answer = await health('v1').catch(() => null);
        if (answer?.status !== 200) failures += 1;
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const started = Date.now();
    const [second, third] = await Promise.allSettled([
      buildinst(buildinstInputsFor(loaded), { version: 'v2', cluster: test.cluster }, log),
      // the third run starts once the second holds the cluster lock
      waitFor('buildinst v2 to hold the lock', async () => ((await lockStatus(test.cluster.manager, loaded.config.app))?.holder?.command === 'depl buildinst --version v2' ? true : undefined), 120_000, 100)
        .then(() => buildinst(buildinstInputsFor(loaded), { version: 'v3', cluster: test.cluster }, log)),
    ]);
    const elapsed = Date.now() - started;
    polling = false;
    await poller;
    expect(second.status).toBe('fulfilled');
    expect(third.status).toBe('rejected');
    const refusal = (third as PromiseRejectedResult).reason as OperationError;
    expect(refusal.code).toBe('LOCKED');
    expect(refusal.message).toMatch(/held by .+@.+ \(pid \d+, `depl buildinst --version v2`/);
    expect(failures).toBe(0);
    expect(probes).toBeGreaterThan(3);
    expect((await health('v2')).status).toBe(200);
    expect((await health('v1')).status).toBe(200);
    const timings = (second as PromiseFulfilledResult<BuildinstResult>).value.timings;
    process.stderr.write(`buildinst of an unchanged tree (second run): ${(elapsed / 1000).toFixed(1)} s (build ${timings.build} ms, distribute ${timings.distribute} ms, install ${timings.install} ms)\n`);
  });

  it('lists both versions (depl versions --json)', async () => {
    const rows = await listVersions(clusterAccessFor(loaded), log, test.cluster);
    expect(rows.map((r) => r.version)).toEqual(['v1', 'v2']);
    expect(rows[0]!.services).toEqual([
      { name: 'shop-v1-api', replicas: 2, running: 2 },
      { name: 'shop-v1-worker', replicas: 3, running: 3 },
    ]);
    const cli = await runCli(['--config', test.configFile, '--json', 'versions'], { cwd: test.dir });
    expect(cli.exitCode, cli.stderr).toBe(0);
    const listed = JSON.parse(cli.stdout) as { versions: { version: string; url: string; live: boolean }[] };
    expect(listed.versions.map((v) => [v.version, v.url, v.live])).toEqual([['v1', 'http://v1.shop.localhost/', false], ['v2', 'http://v2.shop.localhost/', false]]);
    const status = await runCli(['--config', test.configFile, '--json', 'status'], { cwd: test.dir });
    expect(status.exitCode, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { versions: { version: string }[] }).versions.map((v) => v.version)).toEqual(['v1', 'v2']);
  });

  it('exits 2 from the CLI for a bad version label, before building', async () => {
    const cli = await runCli(['--config', test.configFile, 'buildinst', '--version', 'v1;rm -rf /'], { cwd: test.dir });
    expect(cli.exitCode).toBe(2);
    expect(cli.stderr).toMatch(/version "v1;rm -rf \/" may contain only a-z, 0-9 and "-"/);
    expect(cli.stderr).not.toMatch(/Step 1/);
  });

  it('redeploys a branch in place: same services, replaced; refuses another branch\'s label and a live branch', async () => {
    // sha256("feature/Login") starts 48fad0: the slug alone would be shared with a branch feature-login
    const label = 'feature-login-48fad0';
    const one = await buildinst(buildinstInputsFor(loaded), { branch: 'feature/Login', cluster: test.cluster }, log);
    expect(one.version).toBe(label);
    expect(one.services).toEqual([`shop-${label}-api`, `shop-${label}-worker`]);
    const apiSpec = async () => {
      const engine = await managerEngine(test.cluster);
      try {
        return (await engine.docker.getService(`shop-${label}-api`).inspect()).Spec as { TaskTemplate: { ContainerSpec: { Image: string; Args: string[]; Labels: Record<string, string>; Configs: { ConfigName: string }[] } } };
      } finally {
        await engine.close();
      }
    };
    const configName = async () => (await apiSpec()).TaskTemplate.ContainerSpec.Configs[0]!.ConfigName;
    const before = await configName();
    const changed: LoadedConfig = { ...loaded, config: { ...loaded.config, config: { ...loaded.config.config, worker: { concurrency: 8 } } } };
    const two = await buildinst(buildinstInputsFor(changed), { branch: 'feature/Login', cluster: test.cluster }, log);
    expect(two.services).toEqual(one.services);
    const second = await configName();
    expect(second).not.toBe(before);
    expect((await health(label)).status).toBe(200);
    const rows = await listVersions(clusterAccessFor(loaded), log, test.cluster);
    expect(rows.filter((r) => r.version === label).map((r) => r.branch)).toEqual(['feature/Login']);

    // a failed redeploy putting the earlier deploy back is proven on the fake cluster (test/unit/buildinst/buildinst-fake)

    // a branch named like that label is another branch: refused before anything is built
    const other = await buildinst(buildinstInputsFor(loaded), { branch: label, cluster: test.cluster }, log).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(UserError);
    expect((other as UserError).code).toBe('VERSION_OTHER_BRANCH');

    // a branch whose slug is the same (feature-login) gets a label of its own: its deploy makes new services and
    // touches none of feature/Login's (planned from this swarm, as a dry run)
    const sameSlug = await buildinst(buildinstInputsFor(loaded), { branch: 'feature-login', cluster: test.cluster, dryRun: true }, log);
    expect(sameSlug.version).toBe('feature-login');
    const serviceSteps = sameSlug.plan.steps.flatMap((s) => (s.kind === 'create-service' || s.kind === 'update-service' || s.kind === 'remove-service' ? [`${s.kind} ${'spec' in s ? s.spec.Name : s.name}`] : []));
    expect(serviceSteps).toEqual(['create-service shop-feature-login-api', 'create-service shop-feature-login-worker']);

    // a branch that is live is not redeployed: buildinst never changes what serves live traffic
    await writeReleaseDocument(test.cluster.manager, toDocument({ ...emptyReleaseState('shop'), live: label }));
    const refused = await buildinst(buildinstInputsFor(loaded), { branch: 'feature/Login', cluster: test.cluster }, log).catch((e: unknown) => e);
    await writeReleaseDocument(test.cluster.manager, toDocument(emptyReleaseState('shop')));
    expect(refused).toBeInstanceOf(UserError);
    expect((refused as UserError).message).toMatch(new RegExp(`version ${label}\\) is live`));

    // nor one that is the previous version: that is what `depl rollback` returns to
    await writeReleaseDocument(test.cluster.manager, toDocument({ ...emptyReleaseState('shop'), previous: label }));
    const previous = await buildinst(buildinstInputsFor(loaded), { branch: 'feature/Login', cluster: test.cluster }, log).catch((e: unknown) => e);
    await writeReleaseDocument(test.cluster.manager, toDocument(emptyReleaseState('shop')));
    expect(previous).toBeInstanceOf(UserError);
    expect([(previous as UserError).code, (previous as UserError).exitCode]).toEqual(['VERSION_PREVIOUS', 2]);
    expect(await configName()).toBe(second);
  });

  it('rejects a version whose http service crashes on start, with the reason, and leaves nothing behind', async () => {
    const api = loaded.config.services.api!;
    const crashing: LoadedConfig = {
      ...loaded,
      config: { ...loaded.config, services: { ...loaded.config.services, api: { ...api, command: ['node', '-e', 'console.error("boom: cannot reach the database"); process.exit(3)', '--'] } } },
    };
    const error = await buildinst(buildinstInputsFor(crashing), { version: 'bad1', cluster: test.cluster, tasksTimeoutMs: 90_000 }, log).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    expect((error as OperationError).message).toMatch(/shop-bad1-api/);
    expect((error as OperationError).message).toMatch(/boom: cannot reach the database|exit code 3|non-zero exit \(3\)/);
    const engine = await managerEngine(test.cluster);
    try {
      const left = await listServices(engine, { 'depl.app': 'shop', 'depl.version': 'bad1' });
      expect(left).toEqual([]);
    } finally {
      await engine.close();
    }
    expect((await health('v1')).status).toBe(200);
    expect((await health('v2')).status).toBe(200);
    expect((await health('bad1')).status).not.toBe(200);
  });

  it('prunes old versions of this app only, and the edge stops serving them', async () => {
    const result = await prune(pruneInputsFor(loaded), { keep: 2, cluster: test.cluster }, log);
    expect(result.removed).toEqual(['v1']);
    expect(result.kept).toEqual([{ version: 'v2', why: 'recent' }, { version: 'feature-login-48fad0', why: 'recent' }]);
    expect((await health('v1')).status).not.toBe(200);
    expect((await health('v2')).status).toBe(200);
    const rows = await listVersions(clusterAccessFor(loaded), log, test.cluster);
    expect(rows.map((r) => r.version)).toEqual(['v2', 'feature-login-48fad0']);
  });
});
