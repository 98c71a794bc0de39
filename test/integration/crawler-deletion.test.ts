import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BlobStore } from '../../crawler/src/blob-store.js';
import { parseServiceConfig, type ServiceConfig } from '../../crawler/src/config.js';
import { DirectoryImageStore, imageStoreFor, type ImageStore } from '../../crawler/src/image-store.js';
import { deleteJob, type JobDeletion } from '../../crawler/src/job-deletion.js';
import { delayedTaskJob, IMAGE_TASK_DEPTH, JobStore, taskFromFields, type PageTask } from '../../crawler/src/jobs.js';
import { CONSUMER_GROUP } from '../../crawler/src/keys.js';
import { HOLD_BLOB, LET_GO_BLOB } from '../../crawler/src/scripts.js';
import { CrawlWorker } from '../../crawler/src/worker/crawl-worker.js';
import { Redis } from 'ioredis';
import { pollUntil } from '../../src/util/poll.js';
import { redisForFile } from '../support/redis-for-file.js';
import { deleteRacing, DELETE_BOUNDARIES } from '../support/delete-race.js';
import { racingRedis } from '../support/redis-race.js';
import { png, serveImagePage, sha256Of } from '../support/synthetic-images.js';

/**
 * A job's delete (job-deletion.ts) racing the writes of the workers still busy with its tasks, on a real Redis,
 * in exact interleavings: the delete is held at one of its steps (a stand-in for the job store or the image store
 * that runs the worker's steps first) or a worker's write is held inside the image store, and the other side runs
 * meanwhile. Whatever the order: nothing of the job survives (keys, queued tasks, stored files), a content another
 * job holds stays, the worker's calls do not fail and the job does not come back.
 */
const redis = redisForFile();
const cleanups = redis.cleanups;

/**
 * A blob store whose next look for a file or write can be held: `hold` runs after the look, before the file is
 * written or after, while the worker waits.
 */
class HeldBlobStore extends BlobStore {
  hold?: { when: 'after-look' | 'before-write' | 'after-write' | 'before-remove'; race: () => Promise<unknown> };

  override async remove(location: string) {
    const hold = this.take('before-remove');
    if (hold !== undefined) await hold.race();
    return super.remove(location);
  }

  override async has(location: string) {
    const there = await super.has(location);
    const hold = this.take('after-look');
    if (hold !== undefined) await hold.race();
    return there;
  }

  override async put(sha256: string, extension: string, bytes: Uint8Array) {
    const hold = this.take('before-write') ?? this.take('after-write');
    if (hold?.when === 'before-write') await hold.race();
    const written = await super.put(sha256, extension, bytes);
    if (hold?.when === 'after-write') await hold.race();
    return written;
  }

  private take(when: NonNullable<HeldBlobStore['hold']>['when']) {
    const hold = this.hold;
    if (hold?.when !== when) return undefined;
    this.hold = undefined;
    return hold;
  }
}

interface Scene {
  config: ServiceConfig;
  jobs: JobStore;
  store: ImageStore;
  /** The directory store's files (none for `redis`). */
  blobs?: HeldBlobStore;
}

async function sceneFor(kind: 'redis' | 'directory'): Promise<Scene> {
  const storePath = await mkdtemp(path.join(tmpdir(), 'crawler-deletion-'));
  cleanups.push(() => rm(storePath, { recursive: true, force: true }));
  const config = parseServiceConfig({ redis: redis.url, keyPrefix: `del-${randomUUID().slice(0, 8)}:`, images: { store: kind, storePath } });
  const jobs = new JobStore(redis.client, config.keyPrefix, { jobTtlSeconds: 3600 });
  if (kind === 'redis') return { config, jobs, store: imageStoreFor(config, redis.client, jobs.keys) };
  const blobs = new HeldBlobStore(storePath);
  return { config, jobs, store: new DirectoryImageStore(blobs, redis.client, jobs.keys), blobs };
}

interface Held { messageId: string; task: PageTask }

/** Takes `count` tasks off the stream as a worker does (they stay in the group's pending list until acknowledged). */
async function take(scene: Scene, count: number): Promise<Held[]> {
  const reply = await redis.client.xreadgroup('GROUP', CONSUMER_GROUP, 'worker-1', 'COUNT', count, 'STREAMS', scene.jobs.keys.tasks, '>') as Array<[string, Array<[string, string[]]>]>;
  const held = reply[0]![1].map(([messageId, fields]) => ({ messageId, task: taskFromFields(fields)! }));
  expect(held.length).toBe(count);
  return held;
}

const A = png(6, 6, 1);
const SHARED = png(6, 6, 2);
const LATE = png(6, 6, 3);

/**
 * A fetchImages job that was cancelled while five image tasks were in flight: it has stored A (its own) and
 * SHARED (which another, running job holds too); the worker still holds the five image tasks.
 */
async function cancelledWithTasksInFlight(scene: Scene): Promise<{ id: string; other: string; inFlight: Held[] }> {
  const { jobs, store } = scene;
  const site = 'http://site.test';
  const other = (await jobs.create({ urls: [`${site}/other`], maxDepth: 0, maxPages: 1, scope: 'host', fetchImages: true })).id;
  await take(scene, 1);
  expect(await store.put(other, sha256Of(SHARED), 'png', SHARED)).toMatchObject({ written: true });
  const { id } = await jobs.create({ urls: [`${site}/`], maxDepth: 0, maxPages: 10, scope: 'host', fetchImages: true, archive: true });
  const [seed] = await take(scene, 1);
  const images = [1, 2, 3, 4, 5, 6].map((n) => ({ url: `${site}/${n}.png`, alt: '', kind: 'img' as const }));
  await jobs.complete(seed!.messageId, seed!.task, { outcome: 'fetched', page: { url: `${site}/`, depth: 0, outcome: 'fetched' }, imagePage: `${site}/`, images, children: [] });
  const [first, ...inFlight] = await take(scene, 6);
  expect(first!.task.depth).toBe(IMAGE_TASK_DEPTH);
  for (const [held, bytes] of [[first!, A], [inFlight.shift()!, SHARED]] as const) {
    // in the directory, SHARED is the other job's file already: this job only takes hold of it
    expect(await store.put(id, sha256Of(bytes), 'png', bytes)).toMatchObject({ written: bytes === A || scene.blobs === undefined });
    await recordStored(scene, held, bytes);
  }
  expect((await jobs.cancel(id))?.status).toBe('cancelled');
  return { id, other, inFlight };
}

/** The connection, counting the calls of one Lua script: `twice` resolves when it is sent a second time. */
function scriptCalls(connection: Redis, script: string): { redis: Redis; twice: Promise<void> } {
  const sha = createHash('sha1').update(script).digest('hex');
  let calls = 0;
  let second!: () => void;
  const twice = new Promise<void>((resolve) => { second = resolve; });
  const proxy = new Proxy(connection, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        if ((property === 'evalsha' && args[0] === sha) || (property === 'eval' && args[0] === script)) {
          calls += 1;
          if (calls === 2) second();
        }
        return method.apply(target, args);
      };
    },
  });
  return { redis: proxy, twice };
}

async function recordStored(scene: Scene, held: Held, bytes: Buffer): Promise<number> {
  const sha256 = sha256Of(bytes);
  const location = BlobStore.locationOf(sha256, 'png');
  return scene.jobs.completeImage(held.messageId, held.task, { url: held.task.url, outcome: 'stored', sha256, type: 'png', bytes: bytes.length },
    { sha256, type: 'png', bytes: bytes.length, width: 6, height: 6, location });
}

/**
 * The worker finishing what it held when the job was cancelled: a download stored and recorded, one whose
 * content was stored before the delete recorded, a retry put aside, a task handed back (shutdown), and the
 * job's provenance and capture writes.
 */
async function finishInFlight(scene: Scene, id: string, inFlight: Held[]): Promise<void> {
  const [stored, recorded, retried, handedBack] = inFlight as [Held, Held, Held, Held];
  const kept = await scene.store.put(id, sha256Of(LATE), 'png', LATE);
  expect(kept).toMatchObject({ written: false });
  await recordStored(scene, stored, LATE);
  await recordStored(scene, recorded, A);
  // a worker that read the job's settings before it was cancelled takes over a task held by a silent one
  await scene.jobs.countTakeover(retried.task);
  await scene.jobs.delay(retried.messageId, { ...retried.task, attempt: retried.task.attempt + 1 }, 0);
  await scene.jobs.release(handedBack.messageId, handedBack.task);
  await scene.jobs.recordRobotsDecision(id, { origin: 'http://site.test', robotsUrl: 'http://site.test/robots.txt', robotsTxt: 'absent', crawlDelaySeconds: null, checkedAt: new Date().toISOString() });
  await scene.jobs.recordCapture(id, { kind: 'image', requested: stored.task.url, url: stored.task.url, date: new Date().toISOString(), requestHeaders: [], status: 200, statusText: 'OK', responseHeaders: [] });
}

/** Nothing of the job is left anywhere: keys, queued, delayed or held tasks, stored files, holders; the other job keeps SHARED. */
async function expectNothingLeftOf(scene: Scene, id: string, other: string, messageIds: string[]): Promise<void> {
  const { client } = redis;
  const { keys } = scene.jobs;
  expect(await client.keys(`${keys.job(id)}*`)).toEqual([]);
  expect(await scene.jobs.get(id)).toBeNull();
  const queued = (await client.xrange(keys.tasks, '-', '+')).map(([, fields]) => taskFromFields(fields)!.job);
  expect(queued.filter((job) => job === id)).toEqual([]);
  expect((await client.zrange(keys.delayed, 0, -1)).filter((member) => delayedTaskJob(member) === id)).toEqual([]);
  const pending = (await client.xpending(keys.tasks, CONSUMER_GROUP, '-', '+', 100) as Array<[string]>).map(([messageId]) => messageId);
  expect(pending.filter((messageId) => messageIds.includes(messageId))).toEqual([]);
  const shared = BlobStore.locationOf(sha256Of(SHARED), 'png');
  if (scene.blobs !== undefined) {
    const files = (await readdir(scene.blobs.root, { recursive: true })).filter((name) => name.endsWith('.png') || name.endsWith('.part'));
    expect(files).toEqual([shared]);
    expect(await client.keys(`${scene.config.keyPrefix}blob-*`)).toEqual([keys.blobHolders(shared)]);
    expect(await client.smembers(keys.blobHolders(shared))).toEqual([other]);
  }
  const opened = await scene.store.open(other, shared);
  expect(opened?.bytes).toBe(SHARED.length);
  opened?.stream.destroy();
}

describe('deleting a job while a worker still writes for it', () => {
  for (const kind of ['redis', 'directory'] as const) {
    for (const at of DELETE_BOUNDARIES) {
      it(`${kind} store: the worker finishes its tasks of a cancelled job when the delete is at "${at}"`, async () => {
        const scene = await sceneFor(kind);
        const { id, other, inFlight } = await cancelledWithTasksInFlight(scene);
        const deleted = await deleteRacing(scene.jobs, scene.store, id, at, () => finishInFlight(scene, id, inFlight));
        // A, and SHARED from the job's own blobs hash (redis); in the directory, SHARED stays for the other job
        expect(deleted).toMatchObject({ outcome: 'deleted', contentsRemoved: kind === 'redis' ? 2 : 1 });
        await expectNothingLeftOf(scene, id, other, inFlight.map((held) => held.messageId));
      });
    }
  }

  // a write that began before the delete (the job held the content) and ends in the middle of it
  for (const when of ['before-write', 'after-write'] as const) {
    for (const at of DELETE_BOUNDARIES) {
      it(`directory store: a write held ${when === 'before-write' ? 'between taking hold of the content and writing the file' : 'between writing the file and checking the job'} while the delete reaches "${at}"`, async () => {
        const scene = await sceneFor('directory');
        const { id, other, inFlight } = await cancelledWithTasksInFlight(scene);
        let resume!: () => void;
        const resumed = new Promise<void>((resolve) => { resume = resolve; });
        let reached!: () => void;
        const holding = new Promise<void>((resolve) => { reached = resolve; });
        scene.blobs!.hold = { when, race: () => { reached(); return resumed; } };
        const writing = scene.store.put(id, sha256Of(LATE), 'png', LATE);
        await holding;
        const deleted = await deleteRacing(scene.jobs, scene.store, id, at, async () => {
          resume();
          expect(await writing).toMatchObject({ written: false });
          await recordStored(scene, inFlight[0]!, LATE);
        });
        expect(deleted).toMatchObject({ outcome: 'deleted' });
        await expectNothingLeftOf(scene, id, other, [inFlight[0]!.messageId]);
      });
    }
  }

  it('directory store: a content another job looks for while a delete removes it is that job\'s alone, removed with it', async () => {
    const scene = await sceneFor('directory');
    const { jobs, store } = scene;
    const location = BlobStore.locationOf(sha256Of(LATE), 'png');
    const deleted = (await jobs.create({ urls: ['http://deleted.test/'], maxDepth: 0, maxPages: 1, scope: 'host', fetchImages: true })).id;
    await take(scene, 1);
    expect(await store.put(deleted, sha256Of(LATE), 'png', LATE)).toMatchObject({ written: true });
    expect((await jobs.cancel(deleted))?.status).toBe('cancelled');
    const storing = (await jobs.create({ urls: ['http://storing.test/'], maxDepth: 0, maxPages: 1, scope: 'host', fetchImages: true })).id;
    await take(scene, 1);
    // the other job's worker has found the file there when the delete removes it
    scene.blobs!.hold = { when: 'after-look', race: () => deleteJob(jobs, store, deleted) };
    expect(await store.put(storing, sha256Of(LATE), 'png', LATE)).toMatchObject({ location });
    expect(existsSync(path.join(scene.blobs!.root, location))).toBe(true);
    expect(scene.blobs!.hold).toBeUndefined();
    // held by that job alone (not by '*', which no delete removes): its own delete removes the file
    expect(await redis.client.smembers(jobs.keys.blobHolders(location))).toEqual([storing]);
    expect((await jobs.cancel(storing))?.status).toBe('cancelled');
    expect(await deleteJob(jobs, store, storing)).toMatchObject({ outcome: 'deleted', contentsRemoved: 1 });
    expect((await readdir(scene.blobs!.root, { recursive: true })).filter((name) => name.endsWith('.png'))).toEqual([]);
    expect(await redis.client.keys(`${scene.config.keyPrefix}*`)).toEqual([jobs.keys.tasks]);
  });

  it('directory store: two deletes of a job removing its file at once count it once, and leave the file another job writes meanwhile', async () => {
    const scene = await sceneFor('directory');
    const { jobs, store } = scene;
    const location = BlobStore.locationOf(sha256Of(LATE), 'png');
    const id = (await jobs.create({ urls: ['http://deleted.test/'], maxDepth: 0, maxPages: 1, scope: 'host', fetchImages: true })).id;
    await take(scene, 1);
    expect(await store.put(id, sha256Of(LATE), 'png', LATE)).toMatchObject({ written: true });
    expect((await jobs.cancel(id))?.status).toBe('cancelled');
    const writer = (await jobs.create({ urls: ['http://writer.test/'], maxDepth: 0, maxPages: 1, scope: 'host', fetchImages: true })).id;
    await take(scene, 1);
    // the first delete has let go of the file (nobody holds it now) and is about to remove it
    let resume!: () => void;
    const resumed = new Promise<void>((resolve) => { resume = resolve; });
    let reached!: () => void;
    const removing = new Promise<void>((resolve) => { reached = resolve; });
    scene.blobs!.hold = { when: 'before-remove', race: () => { reached(); return resumed; } };
    const first = deleteJob(jobs, store, id);
    await removing;
    // a second delete of the job, then the writer job storing the same content: each either ends, or waits for the
    // first delete's removal (it asks Redis again)
    const secondAsks = scriptCalls(redis.client, LET_GO_BLOB);
    const second = deleteJob(jobs, new DirectoryImageStore(scene.blobs!, secondAsks.redis, jobs.keys), id);
    await Promise.race([second, secondAsks.twice]);
    const writerAsks = scriptCalls(redis.client, HOLD_BLOB);
    const writing = new DirectoryImageStore(scene.blobs!, writerAsks.redis, jobs.keys).put(writer, sha256Of(LATE), 'png', LATE);
    await Promise.race([writing, writerAsks.twice]);
    resume();
    const deletes = [await first, await second] as JobDeletion[];
    expect(deletes.map((deleted) => deleted.outcome)).toEqual(['deleted', 'deleted']);
    expect(deletes.reduce((n, deleted) => n + deleted.contentsRemoved, 0), 'X-Contents-Removed of the two deletes').toBe(1);
    expect(await writing).toMatchObject({ location });
    expect(existsSync(path.join(scene.blobs!.root, location)), 'the writer job\'s file').toBe(true);
    expect(await redis.client.smembers(jobs.keys.blobHolders(location))).toEqual([writer]);
    expect(await redis.client.keys(`${jobs.keys.job(id)}*`)).toEqual([]);
  });

  it('a delayed task that comes due while the delete takes the job\'s tasks off the queues does not stay queued', async () => {
    const scene = await sceneFor('redis');
    const { id, other, inFlight } = await cancelledWithTasksInFlight(scene);
    await scene.jobs.delay(inFlight[0]!.messageId, { ...inFlight[0]!.task, attempt: 2 }, 0);
    // the promotion (every worker runs one four times a second) lands just before the delete scans the delayed set
    const jobs = racingRedis(redis.client, { command: 'zscan', when: 'before' }, () => scene.jobs.promoteDue());
    const deleted = await deleteJob(new JobStore(jobs.redis, scene.config.keyPrefix, { jobTtlSeconds: 3600 }), scene.store, id);
    expect(jobs.ran()).toBe(true);
    expect(deleted).toMatchObject({ outcome: 'deleted' });
    for (const held of inFlight.slice(1)) await recordStored(scene, held, LATE);
    await expectNothingLeftOf(scene, id, other, inFlight.map((held) => held.messageId));
  });

  for (const kind of ['redis', 'directory'] as const) {
    it(`${kind} store: two deletes at once, the second at each step of the first, remove everything once`, async () => {
      for (const at of DELETE_BOUNDARIES) {
        const scene = await sceneFor(kind);
        const { id, other, inFlight } = await cancelledWithTasksInFlight(scene);
        // (the `redis` store's contents are the job's blobs hash: it goes with them, not with the other keys)
        const keys = (await redis.client.keys(`${scene.jobs.keys.job(id)}*`)).filter((key) => kind !== 'redis' || key !== scene.jobs.keys.imageBlobs(id)).length;
        let second: Awaited<ReturnType<typeof deleteJob>> | undefined;
        const first = await deleteRacing(scene.jobs, scene.store, id, at, async () => { second = await deleteJob(scene.jobs, scene.store, id); });
        if (at === 'record gone') expect(second).toBe('not-found');
        else expect(second).toMatchObject({ outcome: 'deleted' });
        const both = [first, second].filter((d): d is JobDeletion => typeof d === 'object');
        // the contents are removed and counted once, in X-Contents-Removed: A and SHARED in the job's own blobs hash
        // (redis); A alone in the directory, where SHARED stays for the other job
        expect.soft(both.reduce((n, d) => n + d.contentsRemoved, 0), `contents counted with the second delete at "${at}"`).toBe(kind === 'redis' ? 2 : 1);
        expect.soft(both.reduce((n, d) => n + d.keysRemoved, 0), `keys removed with the second delete at "${at}"`).toBe(keys);
        for (const held of inFlight) await recordStored(scene, held, LATE);
        await expectNothingLeftOf(scene, id, other, inFlight.map((held) => held.messageId));
      }
    });
  }
});

describe('deleting a cancelled job whose downloads are still in flight in a real worker', () => {
  for (const at of ['tasks purged', 'record gone'] as const) {
    it(`the worker's late downloads keep nothing when the delete is at "${at}"; the worker does not fail`, async () => {
      const scene = await sceneFor('directory');
      const { jobs, store } = scene;
      // another job holds SHARED; its one task stays with this test (the worker does not run it)
      const other = (await jobs.create({ urls: ['http://other.test/'], maxDepth: 0, maxPages: 1, scope: 'host', fetchImages: true })).id;
      await take(scene, 1);
      await store.put(other, sha256Of(SHARED), 'png', SHARED);
      // /a.png is answered at once; /late.png and /shared.png are held until the job has been cancelled and deleted
      const held = new Set(['/late.png', '/shared.png']);
      let release!: () => void;
      const released = new Promise<void>((resolve) => { release = resolve; });
      let bothAsked!: () => void;
      const asked = new Promise<void>((resolve) => { bothAsked = resolve; });
      const requested = new Set<string>();
      const site = await serveImagePage(new Map([['/a.png', A], ['/late.png', LATE], ['/shared.png', SHARED]]), {
        beforeImage: async (file) => {
          if (!held.has(file)) return;
          requested.add(file);
          if (requested.size === held.size) bothAsked();
          await released;
        },
      });
      cleanups.push(site.close);
      const config = { ...scene.config, allow: { hosts: [], networks: ['127.0.0.1/32'] } };
      const warnings: string[] = [];
      const commands = new Redis(redis.url, { maxRetriesPerRequest: null });
      const reader = new Redis(redis.url, { maxRetriesPerRequest: null });
      const worker = new CrawlWorker({ config, redis: commands, reader, log: { info: () => undefined, warn: (message) => warnings.push(message) } });
      await worker.start();
      cleanups.push(async () => {
        release();
        await worker.stop(500);
        commands.disconnect();
        reader.disconnect();
      });
      const { id } = await jobs.create({ urls: [`${site.origin}/`], maxDepth: 0, maxPages: 5, scope: 'host', fetchImages: true });
      await asked;
      await pollUntil(async () => ((await jobs.get(id))?.counts.imagesStored === 1 || undefined), { timeoutMs: 10_000, intervalMs: 20, onTimeout: () => { throw new Error('/a.png was not stored'); } });
      expect((await jobs.cancel(id))?.status).toBe('cancelled');
      expect(worker.heldCount).toBe(2);

      const deleted = await deleteRacing(jobs, store, id, at, async () => {
        release();
        await pollUntil(async () => (worker.heldCount === 0 || undefined), { timeoutMs: 10_000, intervalMs: 20, onTimeout: () => { throw new Error(`the worker still holds ${worker.heldCount} tasks`); } });
      });
      // A was the job's own; SHARED was never held by it (its download came after the job was marked)
      expect(deleted).toMatchObject({ outcome: 'deleted', contentsRemoved: 1 });
      // every task finished (the page and its three images), none failed or was left for a retry
      expect(warnings).toEqual([]);
      expect(worker.stats).toMatchObject({ completed: 4, retried: 0 });
      await expectNothingLeftOf(scene, id, other, []);
      // only the other job's task is held by anyone
      expect((await redis.client.xpending(jobs.keys.tasks, CONSUMER_GROUP))[0]).toBe(1);
    });
  }
});
