import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { readReleaseDocument } from '../../src/apply/release-store.js';
import { pollUntil } from '../../src/util/poll.js';
import { runCli } from '../support/cli.js';
import type { TestCluster } from '../support/cluster.js';
import { startClusterWithImages, testImages } from '../support/image-cluster.js';

/**
 * A queue-consumer app (no http service) with Redis and a release phase, on a real one-node swarm, through the
 * built CLI and real buildinst runs (busybox consumers, Redis from depl's offline base image, nothing built):
 * - the release phase runs once per install as a job of the new version, on its network (it reaches Redis by
 *   name), before the version's consumers start; a failing one stops the install and prints its output, and the
 *   live version keeps consuming;
 * - a second version is installed with its consumers stopped; `depl switch` starts them and stops the first's,
 *   so the queue is consumed by one version at a time and every job exactly once (counted).
 * Ordering, undo and a depl killed at every step are proved on the fake cluster (test/unit/buildinst/
 * buildinst-fake.test.ts, test/unit/release/consumers.test.ts).
 */
const images = testImages();
const { suffix, busybox } = images;
let tc: TestCluster;
let app: string;

/** Moves jobs from `jobs` to `done:<TAG>` (each move atomic in Redis), five per connection, then pauses; exits on SIGTERM. */
const consume = 'trap "exit 0" TERM; while :; do for i in 1 2 3 4 5; do printf "RPOPLPUSH jobs done:$TAG\\r\\n"; done | nc -w 1 redis 6379 >/dev/null; sleep 1 & wait $!; done';

const cli = (...args: string[]) => runCli(args, { cwd: tc.dir, timeoutMs: 400_000 });

/** depl.yaml for the next install: the consumers' tag (which version did a job) and the release command. */
async function nextVersion(tag: string, release: string): Promise<void> {
  const document = parse(await readFile(tc.configFile, 'utf8')) as { services: { consumer: Record<string, unknown> } } & Record<string, unknown>;
  document.services.consumer = { ...document.services.consumer, env: { TAG: tag } };
  await writeFile(tc.configFile, stringify({ ...document, release: { service: 'consumer', command: ['sh', '-c', release], timeout: '2m' } }));
}

/** redis-cli in the Redis accessory's container on the manager. */
async function redis(...args: string[]): Promise<string> {
  const id = (await tc.cluster.manager.exec(['docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${app}-redis`])).stdout.trim().split('\n')[0]!;
  return (await tc.cluster.manager.exec(['docker', 'exec', id, 'redis-cli', ...args])).stdout.trim();
}

let pushed = 0;
async function push(n: number): Promise<void> {
  const jobs = Array.from({ length: n }, (_, i) => `job-${pushed + i}`);
  await redis('LPUSH', 'jobs', ...jobs);
  pushed += n;
}
const done = async (tag: string) => Number(await redis('LLEN', `done:${tag}`));
async function untilConsumed(expected: Record<string, number>): Promise<void> {
  await pollUntil(async () => {
    const counts = Object.fromEntries(await Promise.all(Object.keys(expected).map(async (tag) => [tag, await done(tag)] as const)));
    return Object.entries(expected).every(([tag, n]) => counts[tag] === n) && Number(await redis('LLEN', 'jobs')) === 0 ? true : undefined;
  }, { timeoutMs: 120_000, intervalMs: 500, onTimeout: async () => {
    throw new Error(`not consumed as expected ${JSON.stringify(expected)}: ${JSON.stringify({ v1: await done('v1'), v2: await done('v2'), queued: await redis('LLEN', 'jobs') })}`);
  } });
}

/** `<running>/<desired>` of a version's consumer service. */
async function tasksOf(version: string): Promise<string> {
  const listed = await tc.cluster.manager.exec(['docker', 'service', 'ls', '--filter', `name=${app}-${version}-consumer`, '--format', '{{.Name}} {{.Replicas}}']);
  return listed.stdout.split('\n').find((l) => l.startsWith(`${app}-${version}-consumer `))?.split(' ')[1] ?? '(none)';
}

/** The app's job services still on the swarm (release jobs are removed once they end). */
async function jobsLeft(): Promise<string[]> {
  const out = await tc.cluster.manager.exec(['docker', 'service', 'ls', '--format', '{{.Name}}', '--filter', `label=depl.app=${app}`, '--filter', 'label=depl.job']);
  return out.stdout.split('\n').filter((l) => l.trim().length > 0);
}

beforeAll(async () => {
  tc = await startClusterWithImages(images, ['busybox'], {
    nodes: 1,
    app: `rp${suffix.slice(0, 4)}`,
    config: {
      images: { node: busybox, consumer: busybox },
      services: { consumer: { image: 'consumer', command: ['sh', '-c', consume], env: { TAG: 'v1' }, replicas: 1, stopGracePeriod: '5s' } },
      accessories: { redis: { image: 'redis', command: ['redis-server', '--save', ''], port: 6379 } },
    },
  });
  app = tc.loaded.config.app;
}, 600_000);

afterAll(async () => {
  await tc?.stop();
});

describe('a queue-consumer app with a release phase', () => {
  it("runs the release phase before the consumers start; switch moves consumption to the new version, every job once; a failing release phase prints its output and leaves live consuming", async () => {
    await nextVersion('v1', 'echo "migrating to v1"; printf "SET schema v1\\r\\n" | nc -w 2 redis 6379');
    const dry = await cli('buildinst', '--version', 'v1', '--dry-run');
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(new RegExp(`release phase: run \`sh -c .*\` once as job ${app}-release-consumer-[0-9a-f]{6}`));
    const v1 = await cli('buildinst', '--version', 'v1');
    expect(v1.exitCode, v1.stderr).toBe(0);
    // its output, streamed: it reached Redis by name on the app's network
    expect(v1.stderr).toContain('consumer| migrating to v1');
    expect(v1.stderr).toMatch(/release phase: exit 0 in [\d.]+ s/);
    expect(await redis('GET', 'schema')).toBe('v1');
    expect(await jobsLeft()).toEqual([]);
    const live1 = await cli('switch', 'v1');
    expect(live1.exitCode, live1.stderr).toBe(0);
    await push(30);
    await untilConsumed({ v1: 30 });

    // v2 is installed beside v1 with its consumers stopped: v1 alone keeps consuming
    await nextVersion('v2', 'echo "migrating to v2"; printf "SET schema v2\\r\\n" | nc -w 2 redis 6379');
    const v2 = await cli('buildinst', '--version', 'v2');
    expect(v2.exitCode, v2.stderr).toBe(0);
    expect(v2.stderr).toMatch(/v2's consumers are created stopped while v1 is installed/);
    expect(await tasksOf('v2')).toBe('0/0');
    await push(10);
    await untilConsumed({ v1: 40, v2: 0 });

    const switched = await cli('switch', 'v2');
    expect(switched.exitCode, switched.stderr).toBe(0);
    expect(switched.stderr).toMatch(new RegExp(`v2's consumers run; stopped ${app}-v1-consumer`));
    expect(await tasksOf('v1')).toBe('0/0');
    expect(await tasksOf('v2')).toBe('1/1');
    await push(10);
    await untilConsumed({ v1: 40, v2: 10 });
    const status = await cli('status');
    expect(status.exitCode, status.stderr).toBe(0);
    expect(status.stdout).toContain("consumers: v2's run");

    // v3's release phase fails: nothing of v3 is created, v2 keeps consuming
    await nextVersion('v3', 'echo "applying 0002_add_column"; echo "ERROR: column sha256 already exists" >&2; exit 3');
    const v3 = await cli('buildinst', '--version', 'v3');
    expect(v3.exitCode, v3.stderr).toBe(1);
    expect(v3.stderr).toMatch(/the release phase of version v3 failed with exit 3/);
    expect(v3.stderr).toContain('ERROR: column sha256 already exists');
    expect(v3.stderr).toContain('applying 0002_add_column');
    expect(await tasksOf('v3')).toBe('(none)');
    expect(await jobsLeft()).toEqual([]);
    await push(5);
    await untilConsumed({ v1: 40, v2: 15 });
    // every job exactly once: 55 pushed, 55 done, none twice
    const all = [...(await redis('LRANGE', 'done:v1', '0', '-1')).split('\n'), ...(await redis('LRANGE', 'done:v2', '0', '-1')).split('\n')];
    expect(all).toHaveLength(pushed);
    expect(new Set(all).size).toBe(pushed);

    const doc = await readReleaseDocument(tc.cluster.manager, app);
    expect(doc).toMatchObject({ live: 'v2', previous: 'v1', pending: null });
    expect(doc.history.filter((h) => h.action === 'release').map((h) => [h.version, h.exitCode])).toEqual([['v1', 0], ['v2', 0], ['v3', 3]]);
    const versions = await cli('versions');
    expect(versions.exitCode, versions.stderr).toBe(0);
    expect(versions.stdout).toMatch(/^v1 .*previous.*release ok, consumers stopped/m);
    expect(versions.stdout).toMatch(/^v2 .*live.*release ok, consumers running/m);
    expect(versions.stdout).not.toMatch(/^v3 /m);
  }, 1_200_000);
});
