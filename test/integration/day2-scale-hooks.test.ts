import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestThroughEdge } from '../../src/apply/edge/site.js';
import { lockStatus } from '../../src/apply/lock.js';
import { readReleaseDocument } from '../../src/apply/release-store.js';
import { runCli } from '../support/cli.js';
import type { TestCluster } from '../support/cluster.js';
import { startClusterWithImages, testImages } from '../support/image-cluster.js';

/**
 * `depl scale` and hooks on one 3-node local cluster, through the built CLI and real buildinst runs (busybox
 * services, nothing built): the app's scale survives the next buildinst and the switch to it; a failing
 * pre-switch hook stops a switch with nothing changed; hooks see the DEPL_* variables. Scale's refusals, its
 * dry run and a scale killed after any step of its plan are proved on the fake cluster
 * (test/unit/release/scale-hooks.test.ts, test/unit/plan/scale-plan.test.ts).
 */
const images = testImages();
const { suffix, busybox, nginx } = images;
const serve = 'mkdir -p /www && echo ok > /www/healthz && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www';
const idle = 'trap "exit 0" TERM; while :; do sleep 1; done';
let tc: TestCluster;
let app: string;
let domain: string;

const cli = (...args: string[]) => runCli(args, { cwd: tc.dir, timeoutMs: 240_000 });
const releaseFile = () => tc.cluster.manager.readFile(`/var/lib/depl/${app}/release.json`);
const served = async () => (await requestThroughEdge({ url: `http://${tc.cluster.managerNode.address}:80` }, domain, '/')).version;

/** Running and desired tasks of a version's service, as the swarm reports them. */
async function tasksOf(version: string, service: string): Promise<string> {
  const listed = await tc.cluster.manager.exec(['docker', 'service', 'ls', '--filter', `name=${app}-${version}-${service}`, '--format', '{{.Name}} {{.Replicas}}']);
  return listed.stdout.split('\n').find((l) => l.startsWith(`${app}-${version}-${service} `))?.split(' ')[1] ?? '(none)';
}

async function hook(name: string, script: string): Promise<void> {
  const dir = path.join(tc.dir, '.depl', 'hooks');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, name), `#!/bin/sh\n${script}\n`);
  await chmod(path.join(dir, name), 0o755);
}

const hookLog = () => readFile(path.join(tc.dir, 'hooks.log'), 'utf8').catch(() => '');
const logEnv = (name: string) => hook(name, `echo "${name} $DEPL_COMMAND $DEPL_APP $DEPL_VERSION previous=$DEPL_PREVIOUS live=$DEPL_LIVE by=$DEPL_PERFORMER domain=$DEPL_DOMAIN" >> hooks.log`);

beforeAll(async () => {
  tc = await startClusterWithImages(images, ['busybox', 'nginx'], {
    nodes: 3,
    app: `sh${suffix.slice(0, 4)}`,
    config: {
      images: { node: busybox, nginx, redis: busybox, web: busybox },
      services: {
        web: { image: 'web', command: ['sh', '-c', serve], port: 8080, http: true, health: '/healthz', stopGracePeriod: '2s' },
        worker: { image: 'web', command: ['sh', '-c', idle], replicas: 1, stopGracePeriod: '2s' },
      },
      // a compose name with capitals (as init keeps one): Docker's DNS answers it in any case
      accessories: { cache: { image: 'web', command: ['sh', '-c', idle], aliases: ['My_Cache'] } },
    },
  });
  app = tc.loaded.config.app;
  domain = tc.loaded.config.domain;
  const v1 = await cli('buildinst', '--version', 'v1');
  expect(v1.exitCode, v1.stderr).toBe(0);
  const live = await cli('switch', 'v1');
  expect(live.exitCode, live.stderr).toBe(0);
}, 600_000);

afterAll(async () => {
  await tc?.stop();
});

describe('depl scale', () => {
  it('scales the live version and records it; the next buildinst creates its services at that scale', async () => {
    const scaled = await cli('--json', 'scale', 'worker=5');
    expect(scaled.exitCode, scaled.stderr).toBe(0);
    expect(JSON.parse(scaled.stdout)).toMatchObject({ version: 'v1', recorded: true, scale: { worker: 5 }, services: [{ service: `${app}-v1-worker`, from: 1, replicas: 5, running: 5 }] });
    expect(await tasksOf('v1', 'worker')).toBe('5/5');
    expect(await readReleaseDocument(tc.cluster.manager, app)).toMatchObject({ live: 'v1', scale: { worker: 5 }, pending: null });

    for (const name of ['pre-build', 'pre-install', 'post-install']) await logEnv(name);
    const v2 = await cli('buildinst', '--version', 'v2');
    expect(v2.exitCode, v2.stderr).toBe(0);
    expect(v2.stderr).toMatch(/worker: 5 replicas, the app's scale set with depl scale \(depl.yaml says 1/);
    // buildinst waits for every task: the new version's workers run at the app's scale
    expect(await tasksOf('v2', 'worker')).toBe('5/5');
    expect(await tasksOf('v2', 'web')).toBe('1/1');
    const ran = (await hookLog()).trim().split('\n');
    expect(ran.map((l) => l.split(' ')[0])).toEqual(['pre-build', 'pre-install', 'post-install']);
    expect(ran[0]).toMatch(new RegExp(`^pre-build buildinst ${app} v2 previous=v1 live=v1 by=\\S+@\\S+ domain=${domain.replace(/\./g, '\\.')}$`));
  });
});

describe('switch hooks', () => {
  it('a failing pre-switch hook stops the switch: live, the edge and the release document unchanged, the lock given back', async () => {
    await hook('pre-switch', 'echo "migrations are not ready" >&2; exit 3');
    const before = await releaseFile();
    const run = await cli('switch', 'v2');
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('migrations are not ready');
    expect(run.stderr).toMatch(/error: the pre-switch hook \.depl\/hooks\/pre-switch exited with 3: depl switch stopped before changing anything/);
    expect(await releaseFile()).toBe(before);
    expect(await served()).toBe('v1');
    expect(await lockStatus(tc.cluster.manager, app)).toBeNull();
  });

  it('switches once the hook passes; post-switch sees the DEPL_* variables and none of depl\'s credentials; the app\'s scale holds after the switch', async () => {
    await rm(path.join(tc.dir, 'hooks.log'), { force: true });
    await logEnv('pre-switch');
    await logEnv('post-switch');
    await writeFile(path.join(tc.dir, '.depl', 'hooks', 'post-switch'), `${await readFile(path.join(tc.dir, '.depl', 'hooks', 'post-switch'), 'utf8')}env > hook-env.txt\n`);
    // what an operator's shell may hold when it runs depl: OpenStack credentials, a depl secret, an SSH agent
    const credentials = { OS_PASSWORD: `os-pw-${suffix}`, OS_APPLICATION_CREDENTIAL_SECRET: `os-ac-${suffix}`, DEPL_SECRET_API_TOKEN: `tok-${suffix}`, SSH_AUTH_SOCK: `/tmp/agent-${suffix}` };
    const run = await runCli(['--json', 'switch', 'v2'], { cwd: tc.dir, timeoutMs: 240_000, env: credentials });
    expect(run.exitCode, run.stderr).toBe(0);
    const hookEnv = await readFile(path.join(tc.dir, 'hook-env.txt'), 'utf8');
    expect(hookEnv).toMatch(/^DEPL_LIVE=v2$/m);
    expect(hookEnv).toMatch(/^PATH=/m);
    for (const [name, value] of Object.entries(credentials)) {
      expect(hookEnv).not.toContain(`${name}=`);
      expect(hookEnv).not.toContain(value);
    }
    expect(JSON.parse(run.stdout)).toEqual({ live: 'v2', previous: 'v1' });
    expect(await served()).toBe('v2');
    const ran = (await hookLog()).trim().split('\n');
    expect(ran[0]).toMatch(/^pre-switch switch \S+ v2 previous=v1 live=v1 /);
    expect(ran[1]).toMatch(new RegExp(`^post-switch switch ${app} v2 previous=v1 live=v2 by=\\S+@\\S+ domain=${domain.replace(/\./g, '\\.')}$`));
    expect(await tasksOf('v2', 'worker')).toBe('5/5');
    const status = await cli('--json', 'status');
    expect(status.exitCode, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ live: 'v2', scale: { worker: 5 } });
    expect(await lockStatus(tc.cluster.manager, app)).toBeNull();
  });
});

describe('accessory names on a real swarm', () => {
  it("the accessory runs as <app>-cache and answers on the app's network to cache and My_Cache, in any case", async () => {
    const accessories = await tc.cluster.manager.exec(['docker', 'service', 'ls', '--filter', `label=depl.app=${app}`, '--filter', 'label=depl.accessory', '--format', '{{.Name}}']);
    expect(accessories.stdout.trim().split('\n')).toEqual([`${app}-cache`]);
    // asked from a task of the live version (busybox nslookup against Docker's DNS): one address per name, the server's left out
    const names = ['cache', 'My_Cache', 'my_cache', 'MY_CACHE', `${app}-cache`, 'no-such-accessory'];
    const script = `for n in ${names.join(' ')}; do echo "$n $(nslookup "$n" 2>/dev/null | awk '/^Address: /{print $2}' | grep -v '^127\\.0\\.0\\.11' | tail -n 1)"; done`;
    const run = await cli('exec', 'worker', '--', 'sh', '-c', script);
    expect(run.exitCode, run.stderr).toBe(0);
    const answers = Object.fromEntries(run.stdout.trim().split('\n').map((line) => line.trim().split(' ')).map(([name, address]) => [name, address ?? '']));
    const address = answers.cache;
    expect(address, run.stdout).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(answers, run.stdout).toEqual({ cache: address, My_Cache: address, my_cache: address, MY_CACHE: address, [`${app}-cache`]: address, 'no-such-accessory': '' });
  }, 60_000);
});
