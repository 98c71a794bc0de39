import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { parse, stringify } from 'yaml';
import { ensureBaseTarballs } from '../../src/apply/base-images.js';
import { probeThroughEdge } from '../../src/apply/health.js';
import { knownHostsPath } from '../../src/apply/inventory.js';
import { KnownHosts } from '../../src/apply/known-hosts.js';
import { connectSsh } from '../../src/apply/ssh.js';
import { ensureKeyPair } from '../../src/apply/ssh-keypair.js';
import { startDemoSite } from '../../src/demo/site-server.js';
import { isDeplError } from '../../src/errors.js';
import { LOCAL_LABEL_NODE, LOCAL_LABEL_PREFIX, localGateway } from '../../src/plan/local-nodes.js';
import { CANARY_COOKIE, VERSION_HEADER } from '../../src/plan/nginx.js';
import { createLogger, silentLogger } from '../../src/util/log.js';
import { keepCrawlerBuildCache, seedCrawlerBuildCache } from '../support/build-cache.js';
import { runCli } from '../support/cli.js';
import { startTestCluster, type TestCluster } from '../support/cluster.js';
import { crawlerDeployment } from '../support/crawler-deployment.js';
import { nodeUp } from '../../src/workflows/node-up.js';
import { prune } from '../../src/workflows/prune.js';
import { nodeInputsFor, pruneInputsFor } from '../../src/workflows/command-inputs.js';
import { generateMissingSecrets } from '../../src/apply/secrets-store.js';

const log = process.env.DEPL_TEST_VERBOSE ? createLogger({ verbose: true }) : silentLogger;
const docker = new Docker({ socketPath: process.env.DOCKER_HOST?.replace(/^unix:\/\//, '') || '/var/run/docker.sock' });

/**
 * Nectar's path, rehearsed on local nodes built like a fresh Ubuntu cloud image (provider.image: cloud):
 * login user `ubuntu` with passwordless sudo, no root login, no Docker. node-up installs Docker through
 * sudo from Debian's archive; every later command reaches Docker through `sudo -n`. One 2-node cluster. (Docker's
 * install by node-up over SSH was also shown on a root node whose docker.io had been purged, in a file of its own
 * with its own cluster; this cluster shows the same script installing it, through sudo, at no extra node-up.)
 */
describe('local nodes like a fresh Nectar image (ubuntu + sudo, no Docker)', () => {
  let tc: TestCluster;
  const app = 'cloudy';
  const edge = () => `http://${tc.cluster.managerNode.address}:80`;
  const cli = (args: string[], options: { dir?: string; timeoutMs?: number } = {}) =>
    runCli(['--config', path.join(options.dir ?? tc.dir, 'depl.yaml'), ...args], { cwd: options.dir ?? tc.dir, timeoutMs: options.timeoutMs });

  /** A shell command in a node container as its root, from this machine (what the cloud console would be). */
  async function onNode(node: string, script: string): Promise<string> {
    const [container] = await docker.listContainers({ filters: { label: [`${LOCAL_LABEL_PREFIX}=${tc.prefix}`, `${LOCAL_LABEL_NODE}=${node}`] } });
    const exec = await docker.getContainer(container!.Id).exec({ Cmd: ['sh', '-c', script], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({});
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    await new Promise((resolve) => stream.on('end', resolve));
    // multiplexed stream: 8-byte frame headers before each chunk
    const all = Buffer.concat(chunks);
    let text = '';
    for (let at = 0; at + 8 <= all.length;) {
      const size = all.readUInt32BE(at + 4);
      text += all.subarray(at + 8, at + 8 + size).toString();
      at += 8 + size;
    }
    return text.trim();
  }

  beforeAll(async () => {
    const [cluster] = await Promise.all([
      startTestCluster({
        nodes: 2,
        app,
        provider: { image: 'cloud' },
        // the demo site is served from the cluster's bridge gateway; test subnets are all in 10.213.0.0/16
        config: { ssh: { user: 'ubuntu', key: '.depl/id_ed25519' }, ...(await crawlerDeployment(app, { allow: { networks: ['10.213.0.0/16'] } })) },
        log,
      }),
      ensureBaseTarballs(log),
    ]);
    tc = cluster;
    // the crawler's build steps from the tests' cache: buildinst's build and the rest over sudo are what this
    // file shows, not the crawler's npm ci (demo.test.ts builds from nothing)
    await seedCrawlerBuildCache(tc, log);
    // what depl init does: a random API token and Redis password in .depl/secrets
    await generateMissingSecrets(tc.dir, tc.loaded.config.secrets, new Date());
  });

  afterAll(async () => {
    try {
      if (tc !== undefined) await keepCrawlerBuildCache(tc, log);
    } finally {
      await tc?.stop();
    }
  });

  it('node-up installed Docker through sudo, on nodes that take ubuntu and refuse root', async () => {
    // docker.io with apt over SSH, dockerd started, each node in the swarm; a re-run finds nothing left to do
    expect(tc.nodeUp.changes).toEqual(expect.arrayContaining(['node-1: Docker installed', 'node-2: Docker installed', 'node-1: dockerd started', 'node-2: dockerd started']));
    expect(tc.nodeUp.nodes.map((n) => `${n.name} ${n.role} ${n.state}`)).toEqual(['node-1 manager Ready', 'node-2 worker Ready']);
    expect((await (await tc.cluster.remote('node-2')).exec(['docker', 'info', '--format', '{{.Swarm.LocalNodeState}}'])).stdout.trim()).toBe('active');
    expect((await nodeUp(nodeInputsFor(tc.loaded), log)).changes).toEqual([]);
    expect(await onNode('node-2', 'stat -c %U /home/ubuntu/.ssh/authorized_keys; ls /root/.ssh 2>/dev/null | wc -l; sshd -T | grep -i ^permitrootlogin'))
      .toBe('ubuntu\n0\npermitrootlogin no');
    // depl logs in as ubuntu and acts as root through sudo
    const manager = await tc.cluster.remote('node-1');
    expect((await manager.exec(['sh', '-c', 'echo "$(id -un) $SUDO_USER"'])).stdout.trim()).toBe('root ubuntu');

    // root with the project's own key: refused at once, naming the key and the user
    const key = await ensureKeyPair(path.join(tc.dir, '.depl', 'id_ed25519'), 'x');
    const started = Date.now();
    const error = await connectSsh(
      { name: 'node-1', host: tc.cluster.managerNode.address, port: 22, user: 'root', privateKey: key.privateKey, keyFile: key.privateKeyFile },
      { knownHosts: new KnownHosts(knownHostsPath(tc.loaded)), waitMs: 120_000 },
    ).then(() => null, (e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(isDeplError(error) && error.code).toBe('SSH_AUTH_FAILED');
    expect((error as Error).message).toContain(`refused ${key.privateKeyFile}`);
    expect((error as Error).message).toContain('for user root');
  });

  it('buildinst, switch, canary, rollback, stats, crawl and prune all run over the sudo path', async () => {
    const started = Date.now();
    const mark = (what: string) => log.info(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const version of ['v1', 'v2']) {
      const run = await cli(['buildinst', '--version', version], { timeoutMs: 600_000 });
      expect(run.exitCode, run.stderr.slice(-3000)).toBe(0);
      expect(run.stderr + run.stdout).toContain(`Version ${version} is successfully installed`);
      mark(`buildinst ${version}`);
    }
    const live = async () => (await probeThroughEdge(edge(), `${app}.localhost`, '/healthz', 3_000)).version;

    expect((await cli(['switch', 'v1'])).exitCode).toBe(0);
    expect(await live()).toBe('v1');

    const canary = await cli(['canary', 'v2', '--weight', '50']);
    expect(canary.exitCode, canary.stderr).toBe(0);
    // each client keeps its side of the split (by cookie): 40 clients see both sides
    const seen = new Set<unknown>();
    for (let i = 0; i < 40 && seen.size < 2; i++) {
      const answer = await request(`${edge()}/healthz`, { headers: { host: `${app}.localhost`, cookie: `${CANARY_COOKIE}=client-${i}` } });
      await answer.body.dump();
      seen.add(answer.headers[VERSION_HEADER.toLowerCase()]);
    }
    expect([...seen].sort()).toEqual(['v1', 'v2']);
    expect((await cli(['canary', '--promote'])).exitCode).toBe(0);
    expect(await live()).toBe('v2');

    const back = await cli(['--json', 'rollback']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(JSON.parse(back.stdout)).toMatchObject({ live: 'v1' });
    expect(await live()).toBe('v1');

    const stats = await cli(['--json', 'stats', '--since', '10m']);
    expect(stats.exitCode, stats.stderr).toBe(0);
    const versions = (JSON.parse(stats.stdout) as { versions: { version: string }[] }).versions.map((v) => v.version);
    expect(versions).toEqual(expect.arrayContaining(['v1', 'v2']));

    mark('switch, canary, rollback, stats');
    const site = await startDemoSite(localGateway(tc.subnet));
    try {
      const crawl = await cli(['--json', 'crawl', 'submit', site.url, '--depth', '3', '--max-pages', '50', '--wait'], { timeoutMs: 180_000 });
      expect(crawl.exitCode, crawl.stderr.slice(-2000)).toBe(0);
      const job = JSON.parse(crawl.stdout) as { status: string; counts: { fetched: number; robots: number } };
      expect(job.status).toBe('done');
      expect(job.counts.fetched).toBe(11);
      expect(job.counts.robots).toBe(1);
    } finally {
      await site.close();
    }

    mark('crawl');
    // v3 is neither live nor previous: prune (as the demo runs it, keeping none besides those) removes it,
    // its services through the Docker API over sudo and its images from the nodes through sudo
    expect((await cli(['buildinst', '--version', 'v3'], { timeoutMs: 600_000 })).exitCode).toBe(0);
    const pruned = await prune(pruneInputsFor(tc.loaded), { keep: 0 }, log);
    expect(pruned.removed).toEqual(['v3']);
    const listed = await cli(['--json', 'versions']);
    expect((JSON.parse(listed.stdout) as { versions: { version: string }[] }).versions.map((v) => v.version)).toEqual(['v1', 'v2']);
    mark('buildinst v3, prune');
  }, 1_200_000);

  it('a wrong SSH key fails within 15 s, naming the key offered and the user', async () => {
    const other = path.join(tc.dir, 'other', 'id_ed25519');
    await ensureKeyPair(other, 'other');
    const document = parse(await readFile(tc.configFile, 'utf8')) as Record<string, unknown>;
    const wrongDir = tc.dir;
    await writeFile(path.join(wrongDir, 'wrong.yaml'), stringify({ ...document, ssh: { user: 'ubuntu', key: 'other/id_ed25519' } }));
    const started = Date.now();
    const run = await runCli(['--config', path.join(wrongDir, 'wrong.yaml'), 'status'], { cwd: wrongDir, timeoutMs: 60_000 });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('SSH authentication failed');
    expect(run.stderr).toContain(`refused ${other}`);
    expect(run.stderr).toContain('for user ubuntu');
  });

  it('a second project meeting these nodes stops at once and says whose they are', async () => {
    const second = await mkdtemp(path.join(os.tmpdir(), 'depl-second-'));
    try {
      const document = parse(await readFile(tc.configFile, 'utf8')) as Record<string, unknown>;
      await writeFile(path.join(second, 'depl.yaml'), stringify(document));
      for (const verb of [['node-up'], ['node-down', '--yes']]) {
        const started = Date.now();
        const run = await cli(verb, { dir: second, timeoutMs: 60_000 });
        expect(Date.now() - started).toBeLessThan(15_000);
        expect(run.exitCode).toBe(1);
        expect(run.stderr).toContain(`belong to another project: ${tc.dir}`);
      }
      expect((await cli(['--json', 'status'])).exitCode).toBe(0);
    } finally {
      await rm(second, { recursive: true, force: true });
    }
  });

  it('refuses to take cloud nodes for nodes of the other image kind, before changing anything', async () => {
    const document = parse(await readFile(tc.configFile, 'utf8')) as { provider: Record<string, unknown> };
    await writeFile(path.join(tc.dir, 'docker-kind.yaml'), stringify({ ...document, provider: { ...document.provider, image: 'docker' }, ssh: { user: 'root', key: '.depl/id_ed25519' } }));
    const run = await runCli(['--config', path.join(tc.dir, 'docker-kind.yaml'), 'node-up'], { cwd: tc.dir, timeoutMs: 60_000 });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/node-1, node-2 run depl-node-cloud:[0-9a-f]{12}, but depl\.yaml asks for provider\.image: docker/);
    expect((await cli(['--json', 'status'])).exitCode).toBe(0);
  });

  it('a node whose sudo asks for a password stops with the node and the user named', async () => {
    const sudoers = '/etc/sudoers.d/90-cloud-init-users';
    await onNode('node-2', `echo 'ubuntu ALL=(ALL) ALL' > ${sudoers}`);
    try {
      const run = await cli(['node-up'], { timeoutMs: 120_000 });
      expect(run.exitCode).toBe(1);
      expect(run.stderr).toMatch(/node-2 \([0-9.]+\): sudo asks ubuntu for a password/);
    } finally {
      await onNode('node-2', `echo 'ubuntu ALL=(ALL) NOPASSWD:ALL' > ${sudoers}`);
    }
  });
});
