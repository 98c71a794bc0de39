import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { managerEngine, type Engine } from '../../src/apply/docker.js';
import { readReleaseDocument, writeReleaseDocument } from '../../src/apply/release-store.js';
import { createService, ensureSwarmConfig, ensureSwarmSecret, waitForServices } from '../../src/apply/swarm.js';
import { configDocument, planSecrets, planVersionServices } from '../../src/plan/services.js';
import { pollUntil } from '../../src/util/poll.js';
import { silentLogger } from '../../src/util/log.js';
import { Secret } from '../../src/util/secret.js';
import { cliEntry, runCli } from '../support/cli.js';
import type { TestCluster } from '../support/cluster.js';
import { startClusterWithImages, testImages } from '../support/image-cluster.js';

/**
 * `depl run` and `depl exec` on one shared 3-node local cluster, through the built CLI. The version is installed
 * as buildinst installs one (the specs of src/plan/services.ts, its swarm config and secret), from a busybox image.
 */
const images = testImages();
const { suffix, busybox } = images;
const token = `token-${randomBytes(12).toString('hex')}`;
let tc: TestCluster;
let app: string;
let engine: Engine;
let configText: string;

/** The app's job services still on the swarm (by label), as `docker service ls` on the manager lists them. */
async function jobsLeft(): Promise<string[]> {
  const out = await tc.cluster.manager.exec(['docker', 'service', 'ls', '--format', '{{.Name}}', '--filter', `label=depl.app=${app}`, '--filter', 'label=depl.job=run']);
  return out.stdout.split('\n').filter((l) => l.trim().length > 0);
}

beforeAll(async () => {
  tc = await startClusterWithImages(images, ['busybox'], {
    nodes: 3,
    app: `r${suffix.slice(0, 5)}`,
    config: {
      secrets: ['token'],
      services: { web: { image: busybox, command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1; done'], replicas: 2, secrets: ['token'], env: { GREETING: `hi-${suffix}` }, stopGracePeriod: '2s' } },
      config: { marker: `cfg-${suffix}` },
    },
  });
  app = tc.loaded.config.app;
  // version v1, installed the way buildinst installs it: its config document and secret, then its service specs
  engine = await managerEngine(tc.cluster);
  const doc = configDocument(tc.loaded.config);
  configText = doc.data;
  const configRef = await ensureSwarmConfig(engine, doc);
  const [secretDoc] = planSecrets(app, [{ name: 'token', value: new Secret(token) }]);
  const secretRef = await ensureSwarmSecret(engine, secretDoc!);
  const specs = planVersionServices({ config: tc.loaded.config, version: 'v1', images: { web: busybox }, network: tc.cluster.network, configRef, secrets: { token: secretRef }, nodes: 3 });
  for (const spec of specs) await createService(engine, spec);
  await waitForServices(engine, specs.map((s) => ({ name: s.Name, replicas: 2 })), { timeoutMs: 120_000, stableMs: 1_000 }, silentLogger);
}, 600_000);

afterAll(async () => {
  await engine?.close();
  await tc?.stop();
});

describe('depl run', () => {
  it('refuses a service or version that does not exist with exit 2 and a hint; with nothing live, asks for --version', async () => {
    const noService = await runCli(['run', 'nosuch', '--version', 'v1', '--', 'true'], { cwd: tc.dir });
    expect(noService.exitCode).toBe(2);
    expect(noService.stderr).toMatch(/version v1 has no service "nosuch"/);
    expect(noService.stderr).toMatch(/hint: Its services: web\./);
    const noVersion = await runCli(['run', 'web', '--version', 'v9', '--', 'true'], { cwd: tc.dir });
    expect(noVersion.exitCode).toBe(2);
    expect(noVersion.stderr).toMatch(/version v9 is not installed[\s\S]*hint: .*depl versions/);
    const noLive = await runCli(['run', 'web', '--', 'true'], { cwd: tc.dir });
    expect(noLive.exitCode).toBe(2);
    expect(noLive.stderr).toMatch(/no version is live[\s\S]*hint: .*--version/);
    // a command the image does not have: 127 as a shell (and docker run) says it, with the swarm's reason
    const noProgram = await runCli(['run', 'web', '--version', 'v1', '--', 'no-such-program'], { cwd: tc.dir });
    expect(noProgram.exitCode, noProgram.stderr).toBe(127);
    expect(noProgram.stderr).toMatch(/warning: job .*"no-such-program": executable file not found/);
    const execNoService = await runCli(['exec', 'nosuch', '--version', 'v1', '--', 'true'], { cwd: tc.dir });
    expect(execNoService.exitCode).toBe(2);
    expect(execNoService.stderr).toMatch(/no service "nosuch"/);
    expect(await jobsLeft()).toEqual([]);
  });

  it("streams the job's stdout and stderr as they come, exits with its exit code, and leaves no service behind", async () => {
    const child = execa('node', [cliEntry, 'run', 'web', '--version', 'v1', '--', 'sh', '-c', 'echo out; echo err >&2; sleep 4; echo late; exit 3'],
      { cwd: tc.dir, env: { NO_COLOR: '1' }, reject: false, stdin: 'ignore' });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    let exited = false;
    void child.finally(() => { exited = true; });
    // streamed: the first lines arrive while the job still runs (it sleeps 4 s before its last line)
    await pollUntil(async () => (stdout.includes('out\n') && stderr.includes('err\n') ? true : undefined), { timeoutMs: 90_000, intervalMs: 100, onTimeout: () => { throw new Error(`no streamed output; stdout=${stdout} stderr=${stderr}`); } });
    expect(stdout).not.toContain('late');
    expect(exited).toBe(false);
    const result = await child;
    expect(result.exitCode, stderr).toBe(3);
    expect(stdout).toBe('out\nlate\n');
    expect(stderr).toBe('err\n');
    expect(await jobsLeft()).toEqual([]);
  });

  it('runs in the live version by default, passing its exit code through', async () => {
    // the live mark as a switch records it (the edge is not what this file tests)
    const doc = await readReleaseDocument(tc.cluster.manager, app);
    await writeReleaseDocument(tc.cluster.manager, { ...doc, live: 'v1' });
    const result = await runCli(['run', 'web', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3'], { cwd: tc.dir });
    expect(result.exitCode, result.stderr).toBe(3);
    // (runCli, like execa, drops one final newline)
    expect(result.stdout).toBe('out');
    expect(result.stderr).toBe('err');
    const ok = await runCli(['run', 'web', '--', 'true'], { cwd: tc.dir });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(await jobsLeft()).toEqual([]);
  });

  it("sees the version's config, secret and env as its service does", async () => {
    const show = 'cat /run/depl/config.json; echo "secret=$(cat /run/secrets/token)"; echo "env=$GREETING"';
    const job = await runCli(['run', 'web', '--version', 'v1', '--', 'sh', '-c', show], { cwd: tc.dir });
    expect(job.exitCode, job.stderr).toBe(0);
    expect(job.stdout).toBe(`${configText}secret=${token}\nenv=hi-${suffix}`);
    expect(configText).toContain(`cfg-${suffix}`);
    const inService = await runCli(['exec', 'web', '--version', 'v1', '--', 'sh', '-c', show], { cwd: tc.dir });
    expect(inService.exitCode, inService.stderr).toBe(0);
    expect(inService.stdout).toBe(job.stdout);
  });

  it('removes the job on Ctrl-C; a job a killed depl run left is shown by status and removed by the next run', async () => {
    const interrupted = execa('node', [cliEntry, 'run', 'web', '--version', 'v1', '--', 'sh', '-c', 'echo started; sleep 60'], { cwd: tc.dir, env: { NO_COLOR: '1' }, reject: false, stdin: 'ignore' });
    let out = '';
    interrupted.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    await pollUntil(async () => (out.includes('started') ? true : undefined), { timeoutMs: 90_000, intervalMs: 100, onTimeout: () => { throw new Error('the job never started'); } });
    interrupted.kill('SIGINT');
    const stopped = await interrupted;
    expect(stopped.exitCode).toBe(130);
    expect(stopped.stderr).toMatch(/interrupted \(SIGINT\): removing job /);
    expect(await jobsLeft()).toEqual([]);

    const killed = execa('node', [cliEntry, 'run', 'web', '--version', 'v1', '--', 'sh', '-c', 'echo started; sleep 1; exit 5'], { cwd: tc.dir, env: { NO_COLOR: '1' }, reject: false, stdin: 'ignore' });
    let killedOut = '';
    killed.stdout!.on('data', (c: Buffer) => { killedOut += c.toString(); });
    await pollUntil(async () => (killedOut.includes('started') ? true : undefined), { timeoutMs: 90_000, intervalMs: 100, onTimeout: () => { throw new Error('the job never started'); } });
    killed.kill('SIGKILL');
    await killed;
    const [left] = await jobsLeft();
    expect(left).toMatch(new RegExp(`^${app}-run-web-[0-9a-f]{6}$`));
    const status = await pollUntil(async () => {
      const s = await runCli(['--json', 'status'], { cwd: tc.dir });
      expect(s.exitCode, s.stderr).toBe(0);
      const jobs = (JSON.parse(s.stdout) as { jobs: { name: string; state: string; exitCode: number | null; service: string; version: string }[] }).jobs;
      return jobs.find((j) => j.name === left && j.state === 'exited');
    }, { timeoutMs: 60_000, intervalMs: 1_000, onTimeout: () => { throw new Error('status never showed the finished leftover job'); } });
    expect(status).toMatchObject({ service: 'web', version: 'v1', exitCode: 5 });
    const next = await runCli(['run', 'web', '--version', 'v1', '--', 'true'], { cwd: tc.dir });
    expect(next.exitCode, next.stderr).toBe(0);
    expect(next.stderr).toContain(`removing job ${left} left by an interrupted depl run`);
    expect(await jobsLeft()).toEqual([]);
  });
});

describe('depl logs', () => {
  it("removes a task's terminal escape sequences and shows its other control characters escaped; --raw prints them as written", async () => {
    const marker = `esc-${randomBytes(4).toString('hex')}`;
    // a task writes to its own output (its PID 1's stdout, which the swarm logs): clear the screen, retitle the
    // window, colour, a bell
    const wrote = await runCli(['exec', 'web', '--version', 'v1', '--', 'sh', '-c', `printf '\\033[2J\\033]0;owned\\007${marker} \\033[31mred\\033[0m\\007 end\\n' > /proc/1/fd/1`], { cwd: tc.dir });
    expect(wrote.exitCode, wrote.stderr).toBe(0);
    const logs = (...extra: string[]) => runCli(['logs', 'web', '--version', 'v1', '--grep', marker, ...extra], { cwd: tc.dir });
    const shown = await pollUntil(async () => {
      const run = await logs();
      return run.stdout.includes(marker) ? run : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1_000, onTimeout: () => { throw new Error('the line never reached depl logs'); } });
    expect(shown.exitCode, shown.stderr).toBe(0);
    expect(shown.stdout.trim().split('\n')).toHaveLength(1);
    expect(shown.stdout.trim()).toMatch(new RegExp(`^\\S+ v1 web \\d+\\.\\w{5} \\S+ \\| ${marker} red\\\\u0007 end$`));
    // eslint-disable-next-line no-control-regex -- control characters are what this looks for
    expect(shown.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
    const raw = await logs('--raw');
    expect(raw.exitCode, raw.stderr).toBe(0);
    expect(raw.stdout).toContain(`| \u001b[2J\u001b]0;owned\u0007${marker} \u001b[31mred\u001b[0m\u0007 end`);
  });
});

describe('depl exec', () => {
  it("runs in a running task's container on its node, returning its output and exit code; stdin is piped in", async () => {
    const result = await runCli(['exec', 'web', '--version', 'v1', '--', 'sh', '-c', 'echo "in $(hostname)"; echo oops >&2; exit 4'], { cwd: tc.dir });
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stdout).toMatch(/^in [0-9a-f]{12}$/);
    expect(result.stderr).toBe('oops');
    const perNode = await Promise.all(tc.cluster.nodes.map(async (n) => (await (await tc.cluster.remote(n.name)).exec(['docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${app}-v1-web`])).stdout.split('\n').filter(Boolean)));
    const taskContainers = perNode.flat();
    expect(taskContainers).toContain(result.stdout.trim().slice(3));
    const piped = await execa('node', [cliEntry, 'exec', 'web', '--version', 'v1', '--', 'sh', '-c', 'tr a-z A-Z; exit 0'], { cwd: tc.dir, env: { NO_COLOR: '1' }, reject: false, input: 'through stdin\n' });
    expect(piped.exitCode, String(piped.stderr)).toBe(0);
    expect(piped.stdout).toBe('THROUGH STDIN');
  });

  it('is interactive with a TTY when run from a terminal: raw input reaches the shell, the TTY follows the terminal\'s size', async () => {
    // util-linux `script` gives depl a terminal of 33 rows and 111 columns; once ./resize exists it becomes 44 x 99
    const flag = path.join(tc.dir, 'resize');
    // after depl, the terminal's modes: raw mode (-icanon -echo) must not outlive the session
    const line = `stty rows 33 cols 111; (while [ ! -e ${flag} ]; do sleep 0.1; done; stty rows 44 cols 99 < /dev/tty) & node ${cliEntry} exec web --version v1 -- sh; code=$?; echo "after: $(stty -a | grep -o -- '-\\?icanon\\|-\\?echo ' | tr -d ' \\n')"; exit $code`;
    const session = execa('script', ['-qefc', line, '/dev/null'], { cwd: tc.dir, env: { NO_COLOR: '1', TERM: 'xterm' }, reject: false });
    let out = '';
    session.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    const waitFor = (pattern: RegExp, what: string) => pollUntil(async () => (pattern.test(out) ? true : undefined), { timeoutMs: 60_000, intervalMs: 100, onTimeout: () => { throw new Error(`${what}; output: ${JSON.stringify(out)}`); } });
    // busybox sh prints its prompt (and asks the terminal where the cursor is) only when its stdin is a terminal
    await waitFor(/~ # /, 'no shell prompt');
    session.stdin!.write('tty; stty size; echo "term=$TERM"\r');
    // (two terminals in a row: the container's and script's each turn \n into \r\n)
    await waitFor(/\/dev\/pts\/\d+\r+\n33 111\r+\nterm=xterm\r+\n/, 'the TTY did not have the terminal\'s size');
    await writeFile(flag, '');
    await pollUntil(async () => {
      session.stdin!.write('stty size\r');
      await new Promise((resolve) => setTimeout(resolve, 300));
      return /\n44 99\r+\n/.test(out) ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200, onTimeout: () => { throw new Error(`the TTY was not resized; output: ${JSON.stringify(out)}`); } });
    session.stdin!.write('exit 7\r');
    const result = await session;
    expect(result.exitCode, out).toBe(7);
    expect(out).toMatch(/after: icanonecho\r?\n/);
  });
});

describe('depl scale without an edge (no service has http: true)', () => {
  it('scales the version on the swarm and records it; no edge is started or asked', async () => {
    const dry = await runCli(['--json', 'scale', 'web=3', '--version', 'v1', '--dry-run'], { cwd: tc.dir });
    expect(dry.exitCode, dry.stderr).toBe(0);
    // the plan object the applier then runs (src/plan/scale-plan.ts)
    expect(JSON.parse(dry.stdout)).toMatchObject({
      command: 'depl scale web=3 --version v1', notes: expect.arrayContaining([`replicas: ${app}-v1-web 2 -> 3`]),
      steps: [{ kind: 'release-change' }, { kind: 'wait-for-replicas' }],
    });
    const scaled = await runCli(['scale', 'web=3', '--version', 'v1'], { cwd: tc.dir });
    expect(scaled.exitCode, scaled.stderr).toBe(0);
    expect(scaled.stdout).toMatch(/^Scaled v1: web 2 -> 3 \(3 running\)$/m);
    expect((await readReleaseDocument(tc.cluster.manager, app)).history.at(-1)).toMatchObject({ action: 'scale', version: 'v1' });
    const edge = await tc.cluster.manager.exec(['docker', 'service', 'ls', '-q', '--filter', `name=${app}-edge`]);
    expect(edge.stdout.trim()).toBe('');
    const back = await runCli(['scale', 'web=2', '--version', 'v1'], { cwd: tc.dir });
    expect(back.exitCode, back.stderr).toBe(0);
  });
});
