import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { execa } from 'execa';
import { parseSecretsFile } from '../../src/plan/secrets.js';
import { runCli, repoRoot } from '../support/cli.js';
import { freeSubnet, removeByPrefix } from '../support/cluster.js';

/**
 * The README's main job, `npm run demo`, is `depl demo`: from nothing to a crawl through a live version.
 * Run here through the built CLI with its own subnet and container prefix, so it can sit beside a user's
 * demo cluster and other tests.
 */
describe('depl demo: the main job on the embedded default', () => {
  let dir: string;
  let prefix: string;
  let configFile: string;
  let job: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-demo-'));
    prefix = `dd-${randomBytes(3).toString('hex')}`;
    configFile = path.join(dir, 'depl.yaml');
    expect((await runCli(['init', '--config', configFile], { cwd: dir })).exitCode).toBe(0);
    const document = parseDocument(await readFile(configFile, 'utf8'));
    document.setIn(['provider', 'subnet'], await freeSubnet());
    document.setIn(['provider', 'prefix'], prefix);
    // `depl init` in an empty folder points the example's build at depl's own package folder (this checkout)
    expect(document.getIn(['services', 'api', 'build', 'context'])).toBe(repoRoot);
    await writeFile(configFile, document.toString());
  });

  afterAll(async () => {
    await removeByPrefix(prefix);
    await rm(dir, { recursive: true, force: true });
  });

  it('brings up 3 nodes, installs and switches a version live, and crawls the demo site through it', async () => {
    const run = await runCli(['demo', '--config', configFile], { cwd: dir, timeoutMs: 900_000 });
    expect(run.exitCode, run.stderr.slice(-3000)).toBe(0);
    for (const step of ['1/6 Docker Engine', '2/6 config', '3/6 depl node-up', '4/6 depl buildinst', '5/6 depl switch', '6/6 depl crawl submit']) {
      expect(run.stderr).toContain(step);
    }
    expect(run.stderr).toMatch(/Version [0-9]{8}-[0-9]{6} is successfully installed/);
    // the demo site: 11 crawlable pages, /private/ kept out by robots.txt, 32 distinct images
    expect(run.stdout).toMatch(/Crawl [0-9a-f-]{36}: done, 11 pages fetched, 1 skipped by robots\.txt, 32 images found:/);
    job = /Crawl ([0-9a-f-]{36}): done/.exec(run.stdout)![1]!;
    expect(run.stdout).toContain('/img/harbour-2@2x.svg');
    expect(run.stdout).not.toContain('secret.svg');
    expect(run.stdout).toMatch(/curl -H 'Host: crawler\.localhost' http:\/\/[0-9.]+\/healthz/);

    const status = await runCli(['status', '--json', '--config', configFile], { cwd: dir });
    expect(status.exitCode, status.stderr).toBe(0);
    const report = JSON.parse(status.stdout) as { nodes: { state: string }[]; live: string | null };
    expect(report.nodes.map((n) => n.state)).toEqual(['Ready', 'Ready', 'Ready']);
    expect(report.live, status.stdout).toMatch(/^[0-9]{8}-[0-9]{6}$/);
    expect(run.stdout).toContain(`Live version ${report.live}`);
    // the demo's own CLI timeout: builds the node and crawler images, which takes longer than the default 300 s on a busy machine
  }, 900_000);

  // the same cluster, after the demo: the generated token and Redis password did the crawl above
  it('shows no secret value in docker service/config inspect, container inspect or ps on any node; Redis refuses a client without the password', async () => {
    const secrets = parseSecretsFile(await readFile(path.join(dir, '.depl', 'secrets'), 'utf8'));
    expect(secrets.map((s) => s.name).sort()).toEqual(['api_token', 'redis_password']);
    const values = secrets.map((s) => s.value);
    for (const value of values) expect(value.length).toBeGreaterThanOrEqual(32);
    const onNode = async (node: number, script: string) => (await execa('docker', ['exec', `${prefix}-node-${node}`, 'sh', '-c', script], { reject: false })).stdout;
    const assertClean = (what: string, text: string, mayBeEmpty = false) => {
      if (!mayBeEmpty) expect(text.length, what).toBeGreaterThan(0);
      for (const value of values) {
        expect(text, what).not.toContain(value);
        expect(text, `${what} (base64)`).not.toContain(Buffer.from(value).toString('base64'));
      }
    };
    assertClean('docker service inspect', await onNode(1, 'docker service inspect $(docker service ls -q)'));
    const configs = await onNode(1, 'docker config inspect $(docker config ls -q)');
    assertClean('docker config inspect', configs);
    const documents = (JSON.parse(configs) as { Spec: { Data: string } }[]).map((c) => Buffer.from(c.Spec.Data, 'base64').toString('utf8'));
    assertClean('config documents', documents.join('\n'));
    expect(documents.join('\n')).toContain('/run/secrets/api_token');
    assertClean('docker secret inspect', await onNode(1, 'docker secret inspect $(docker secret ls -q)'));
    for (const node of [1, 2, 3]) {
      assertClean(`ps on node-${node}`, await onNode(node, 'ps -eo args'));
      assertClean(`docker inspect on node-${node}`, await onNode(node, 'docker inspect $(docker ps -q)'), true);
    }

    // a container on the app's network without the password: NOAUTH; with it (from a file, not argv): the data
    const redisImage = (await onNode(1, "docker service inspect crawler-redis --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'")).trim();
    expect(redisImage).not.toBe('');
    const denied = await onNode(1, `docker run --rm --network crawler-net ${redisImage} redis-cli -h redis --scan --count 100 2>&1; docker run --rm --network crawler-net ${redisImage} redis-cli -h redis get anything 2>&1`);
    expect(denied).toMatch(/NOAUTH Authentication required/);
    const password = secrets.find((s) => s.name === 'redis_password')!.value;
    const allowed = await execa('docker', ['exec', '-i', `${prefix}-node-1`, 'sh', '-c',
      `cat > /tmp/pw && docker run --rm --network crawler-net -v /tmp/pw:/pw:ro ${redisImage} sh -c 'REDISCLI_AUTH="$(cat /pw)" redis-cli -h redis dbsize'; rm -f /tmp/pw`], { input: password, reject: false });
    expect(Number(allowed.stdout.trim()), allowed.stderr).toBeGreaterThan(0);
  });

  // day 2 on the demo's live crawler: a one-off job with the version's image, config and secrets
  it('runs a one-off job from the live crawler version and returns its exit code, leaving no job behind', async () => {
    const exit3 = await runCli(['run', 'api', '--config', configFile, '--', 'node', '-e', 'console.log("from the job"); process.exit(3)'], { cwd: dir });
    expect(exit3.exitCode, exit3.stderr).toBe(3);
    expect(exit3.stdout).toContain('from the job');
    // the job sees the version's config document and its secret files, as the api service does
    const sees = await runCli(['run', 'worker', '--config', configFile, '--', 'sh', '-c', 'test -s /run/secrets/redis_password && echo secret-there'], { cwd: dir });
    expect(sees.exitCode, sees.stderr).toBe(0);
    expect(sees.stdout).toContain('secret-there');
    const jobs = (await execa('docker', ['exec', `${prefix}-node-1`, 'docker', 'service', 'ls', '-q', '--filter', 'label=depl.job'])).stdout.trim();
    expect(jobs).toBe('');
  });
  // last: the local provider's hibernation (#30) on the demo's crawler and its crawl's data
  it('hibernate stops the node containers after backing up Redis and the release state; wake starts them and the same live version answers with the same crawl results', async () => {
    const cli = (args: string[]) => runCli([...args, '--config', configFile], { cwd: dir, timeoutMs: 600_000 });
    const results = async () => {
      const answer = await cli(['crawl', 'results', job, '--format', 'csv']);
      expect(answer.exitCode, answer.stderr).toBe(0);
      return answer.stdout;
    };
    const before = await results();
    expect(before).toContain('/img/harbour-2@2x.svg');
    const live = (JSON.parse((await cli(['status', '--json'])).stdout) as { live: string }).live;
    const containerStates = async () => (await execa('docker', ['inspect', '-f', '{{.State.Status}}', ...[1, 2, 3].map((n) => `${prefix}-node-${n}`)])).stdout.trim().split('\n');

    const started = Date.now();
    const hibernated = await cli(['hibernate', '--json']);
    expect(hibernated.exitCode, hibernated.stderr.slice(-3000)).toBe(0);
    const hibernateSeconds = (Date.now() - started) / 1000;
    expect(JSON.parse(hibernated.stdout)).toMatchObject({ changed: true, hibernation: { complete: true, live, instances: 'node-containers', backups: { redis: expect.any(String) } } });
    expect(await containerStates()).toEqual(['exited', 'exited', 'exited']);
    const status = await cli(['status']);
    expect(status.stdout).toMatch(/^hibernation: hibernating since .*every node container is stopped/);

    const waking = Date.now();
    const woken = await cli(['wake', '--json']);
    expect(woken.exitCode, woken.stderr.slice(-3000)).toBe(0);
    const wakeSeconds = (Date.now() - waking) / 1000;
    // the volumes survived the stop: nothing needed restoring
    expect(JSON.parse(woken.stdout)).toEqual({ changed: true, restored: [], live });
    expect(await containerStates()).toEqual(['running', 'running', 'running']);
    const after = JSON.parse((await cli(['status', '--json'])).stdout) as { nodes: { state: string }[]; live: string };
    expect(after).toMatchObject({ live, nodes: [{ state: 'Ready' }, { state: 'Ready' }, { state: 'Ready' }] });
    expect(await results()).toBe(before);
    process.stderr.write(`local hibernate ${hibernateSeconds.toFixed(1)} s, wake ${wakeSeconds.toFixed(1)} s (3 node containers)\n`);
  }, 900_000);
});
