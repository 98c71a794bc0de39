import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUntil } from '../../src/util/poll.js';
import { cliEntry, runCli } from '../support/cli.js';
import type { TestCluster } from '../support/cluster.js';
import { startClusterWithImages, testImages } from '../support/image-cluster.js';

/**
 * Day-2 operations on one shared 3-node local cluster, through the built CLI: `depl logs` merged across
 * nodes (one-off and --follow, which picks up tasks that start after it began).
 */
const images = testImages();
const { suffix, busybox } = images;
let tc: TestCluster;
let app: string;

interface JsonLine { time: string; version: string; service: string; task: string; node: string; message: string }
const parseLines = (stdout: string): JsonLine[] => stdout.split('\n').filter((l) => l.trim().length > 0).map((l) => JSON.parse(l) as JsonLine);

beforeAll(async () => {
  tc = await startClusterWithImages(images, ['busybox'], { nodes: 3, app: `d2${suffix.slice(0, 4)}` });
  app = tc.loaded.config.app;
  // one task per node, each printing a numbered line with its host name every 300 ms
  const talk = 'i=0; while true; do i=$((i+1)); echo "line $i from $(hostname)"; sleep 0.3; done';
  await tc.cluster.manager.exec(['docker', 'service', 'create', '--detach', '--no-resolve-image', '--name', `${app}-v1-web`,
    '--network', tc.cluster.network, '--endpoint-mode', 'dnsrr', '--replicas', '3', '--replicas-max-per-node', '1', '--stop-grace-period', '1s',
    '--label', `depl.app=${app}`, '--label', 'depl.version=v1', '--label', 'depl.service=web', busybox, 'sh', '-c', talk]);
}, 600_000);

afterAll(async () => {
  await tc?.stop();
});

describe('depl logs', () => {
  it('merges the lines of tasks on 3 nodes in time order, prefixed with version, service, task and node', async () => {
    const lines = await pollUntil(async () => {
      const run = await runCli(['--json', 'logs', 'web', '--version', 'v1', '--tail', '60'], { cwd: tc.dir });
      expect(run.exitCode, run.stderr).toBe(0);
      const parsed = parseLines(run.stdout);
      return new Set(parsed.map((l) => l.node)).size === 3 && parsed.length === 60 ? parsed : undefined;
    }, { timeoutMs: 120_000, intervalMs: 1_000, onTimeout: () => { throw new Error('no lines from 3 nodes'); } });
    expect(lines.length).toBe(60);
    expect(lines.map((l) => l.time)).toEqual([...lines.map((l) => l.time)].sort());
    expect(lines[0]).toMatchObject({ version: 'v1', service: 'web', task: expect.stringMatching(/^\d+\.\w{5}$/), message: expect.stringMatching(/^line \d+ from /) });
    const text = await runCli(['logs', 'web', '--version', 'v1', '--tail', '3', '--grep', 'line \\d+5 '], { cwd: tc.dir });
    expect(text.exitCode, text.stderr).toBe(0);
    const shown = text.stdout.trim().split('\n');
    expect(shown).toHaveLength(3);
    for (const line of shown) expect(line).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z v1 web \d+\.\w{5} \S+ \| line \d*5 from /);
    const bad = await runCli(['logs', '--version', 'v1', '--grep', '('], { cwd: tc.dir });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/--grep "\(" is not a regular expression/);
  });

  it('--follow shows new lines from all 3 nodes, and from a task started after it began', async () => {
    const follow = execa('node', [cliEntry, '--json', 'logs', 'web', '--version', 'v1', '--follow', '--tail', '0'], { cwd: tc.dir, env: { NO_COLOR: '1' }, reject: false, stdin: 'ignore' });
    const seen: JsonLine[] = [];
    let buffered = '';
    follow.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      seen.push(...parseLines(parts.join('\n')));
    });
    await pollUntil(async () => (new Set(seen.map((l) => l.node)).size === 3 ? true : undefined), { timeoutMs: 60_000, intervalMs: 250, onTimeout: () => { throw new Error(`followed lines from ${[...new Set(seen.map((l) => l.node))].join(', ')} only`); } });
    const before = new Set(seen.map((l) => l.task));
    await tc.cluster.manager.exec(['docker', 'service', 'update', '--detach', '--force', '--update-parallelism', '1', `${app}-v1-web`]);
    await pollUntil(async () => (seen.some((l) => !before.has(l.task)) ? true : undefined), { timeoutMs: 90_000, intervalMs: 250, onTimeout: () => { throw new Error('no line from a task started after --follow began'); } });
    follow.kill('SIGINT');
    const result = await follow;
    expect(result.exitCode).toBe(130);
  });
});
