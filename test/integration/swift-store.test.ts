import { randomBytes, randomUUID, createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCrawlerApi } from '../../crawler/src/api/app.js';
import { CrawlerClient } from '../../crawler/src/client.js';
import { loadServiceConfig, type ServiceConfig } from '../../crawler/src/config.js';
import { ServiceSecret } from '../../crawler/src/core/secret.js';
import { JobStore } from '../../crawler/src/jobs.js';
import { CrawlWorker } from '../../crawler/src/worker/crawl-worker.js';
import { SwiftClient, tempAuthObjectStore, type ObjectStoreAuth } from '../../src/apply/openstack/swift.js';
import { downloadJobFiles } from '../../src/workflows/crawl.js';
import { waitForJob } from '../support/crawler.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startSwift, type TestSwift } from '../support/swift.js';
import { png, sha256Of } from '../support/synthetic-images.js';
import { readHibernationRecord } from '../../src/apply/hibernation-record.js';
import { swiftBackupObjects, type BackupObjects } from '../../src/apply/hibernation-objects.js';
import { writeInventory } from '../../src/apply/inventory.js';
import type { AccessoryConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/util/log.js';
import type { AccessoryTarget } from '../../src/workflows/backup.js';
import { hibernate, wake, type HibernationTarget } from '../../src/workflows/hibernation.js';
import { switchVersion } from '../../src/workflows/switch.js';
import { startFakeCluster, type FakeCluster } from '../support/fake-cluster.js';
import { fakeNodeContainers, type FakeNodeContainers } from '../support/fake-node-containers.js';

/**
 * depl's Swift client, the crawler's `swift` image store and depl hibernate's backups (on the fake cluster)
 * against a real Swift (Debian's proxy, account, container and object servers on loopback, tempauth) and a real
 * Redis. No real cluster.
 */
let swift: TestSwift;
let redis: TestRedis;
let client: Redis;
let auth: ObjectStoreAuth;
const scratch: string[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  [swift, redis] = await Promise.all([startSwift(), startRedis()]);
  client = new Redis(redis.url, { maxRetriesPerRequest: null });
  client.on('error', () => undefined);
  auth = tempAuthObjectStore({ authUrl: swift.authUrl, user: swift.user, key: swift.key });
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

afterAll(async () => {
  client?.disconnect();
  await Promise.all([swift?.stop(), redis?.stop(), ...scratch.map((dir) => rm(dir, { recursive: true, force: true }))]);
});

const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('depl Swift client', () => {
  it('makes the container on demand, checks every write by MD5, streams reads, pages listings and deletes idempotently', async () => {
    const swiftClient = new SwiftClient(auth, { pageSize: 2 });
    const container = `depl-${randomUUID().slice(0, 8)}`;
    const first = randomBytes(70_000);
    expect(await swiftClient.putObject(container, 'backups/a.dump', first)).toBe(md5(first));
    // a stream of unknown length: its MD5 is computed on the way and compared with Swift's ETag
    const second = randomBytes(300_000);
    expect(await swiftClient.putObject(container, 'backups/b.dump', Readable.from([second.subarray(0, 100_000), second.subarray(100_000)]))).toBe(md5(second));
    for (const name of ['c', 'd', 'e']) await swiftClient.putObject(container, `backups/${name}.dump`, Buffer.from(name), { contentType: 'text/plain' });
    await swiftClient.putObject(container, 'other/x', Buffer.from('x'));

    expect(await swiftClient.headObject(container, 'backups/b.dump')).toMatchObject({ bytes: second.length, etag: md5(second) });
    const read = await swiftClient.getObject(container, 'backups/b.dump');
    expect(read).toMatchObject({ bytes: second.length, etag: md5(second) });
    expect((await readAll(read!.stream)).equals(second)).toBe(true);
    expect(await swiftClient.getObject(container, 'backups/none')).toBeNull();
    expect(await swiftClient.headObject(container, 'backups/none')).toBeNull();

    // five objects under the prefix, two per page: three pages, in name order, the other prefix left out
    const listed = [];
    for await (const item of swiftClient.listObjects(container, { prefix: 'backups/' })) listed.push(item);
    expect(listed.map((o) => o.name)).toEqual(['backups/a.dump', 'backups/b.dump', 'backups/c.dump', 'backups/d.dump', 'backups/e.dump']);
    expect(listed[0]).toMatchObject({ bytes: first.length, hash: md5(first) });
    expect(listed[2]).toMatchObject({ contentType: 'text/plain', bytes: 1 });

    expect(await swiftClient.deleteObject(container, 'backups/a.dump')).toBe(true);
    expect(await swiftClient.deleteObject(container, 'backups/a.dump')).toBe(false);
    expect(await swiftClient.headObject(container, 'backups/a.dump')).toBeNull();
  });

  it('refuses a wrong key, and an object past 5 GiB before sending anything', async () => {
    const wrong = new SwiftClient(tempAuthObjectStore({ authUrl: swift.authUrl, user: swift.user, key: 'not-the-key' }));
    await expect(wrong.ensureContainer('never')).rejects.toMatchObject({ code: 'OBJECT_STORE_AUTH_FAILED' });
    const swiftClient = new SwiftClient(auth);
    const container = `depl-${randomUUID().slice(0, 8)}`;
    await expect(swiftClient.putObject(container, 'huge', Readable.from([Buffer.from('x')]), { bytes: 6 * 1024 ** 3 }))
      .rejects.toMatchObject({ code: 'OBJECT_STORE_TOO_LARGE', message: expect.stringMatching(/above 5 GiB need Swift's segmented large objects/) });
    // nothing was made for it
    const listed = [];
    for await (const item of swiftClient.listObjects(container)) listed.push(item);
    expect(listed).toEqual([]);
  });
});

describe('crawler image store in Swift', () => {
  async function swiftConfig(container: string): Promise<ServiceConfig> {
    const dir = await mkdtemp(path.join(tmpdir(), 'crawler-swift-'));
    scratch.push(dir);
    await writeFile(path.join(dir, 'swift_key'), `${swift.key}\n`, { mode: 0o600 });
    const file = path.join(dir, 'config.json');
    await writeFile(file, JSON.stringify({
      redis: redis.url,
      keyPrefix: `swift-${randomUUID().slice(0, 8)}:`,
      allow: { networks: ['127.0.0.1/32'] },
      worker: { concurrency: 8, visibilityTimeoutMs: 1500, retryBaseMs: 50, fetchTimeoutMs: 5000 },
      images: { store: 'swift', swift: { authUrl: swift.authUrl, user: swift.user, keyFile: path.join(dir, 'swift_key'), container } },
    }));
    // the key travels as a secret file, as a swarm secret would be mounted
    expect(await readFile(file, 'utf8')).not.toContain(swift.key);
    return loadServiceConfig(pathToFileURL(file).href, {});
  }

  async function startWorker(config: ServiceConfig): Promise<void> {
    const commands = new Redis(redis.url, { maxRetriesPerRequest: null });
    const reader = new Redis(redis.url, { maxRetriesPerRequest: null });
    for (const connection of [commands, reader]) connection.on('error', () => undefined);
    const worker = new CrawlWorker({ config, redis: commands, reader, log: { info: () => undefined, warn: () => undefined } });
    await worker.start();
    cleanups.push(async () => {
      await worker.stop(500);
      commands.disconnect();
      reader.disconnect();
    });
  }

  async function startSite(contents: Map<string, Buffer>): Promise<string> {
    const server = createServer((req, res) => {
      const bytes = contents.get(req.url!);
      if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(`<html><body>${[...contents.keys()].map((p) => `<img src="${p}">`).join('')}</body></html>`);
      else if (bytes !== undefined) res.writeHead(200, { 'content-type': 'image/png' }).end(bytes);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async function startApi(config: ServiceConfig, token: string): Promise<string> {
    const api = createCrawlerApi({ config: { ...config, apiToken: new ServiceSecret(token) }, redis: client, log: { error: () => undefined } });
    const server = createServer(api.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('keeps a job\'s images and page bodies in the container per job; the API, depl crawl download and the WACZ export read them back; the budget holds', async () => {
    const contents = new Map([['/a.png', png(8, 8, 10)], ['/b.png', png(8, 8, 120)], ['/c.png', png(8, 8, 240)]]);
    contents.set('/copy.png', contents.get('/a.png')!);
    const origin = await startSite(contents);
    const container = `crawler-${randomUUID().slice(0, 8)}`;
    const config = await swiftConfig(container);
    expect(config.images.store).toBe('swift');
    const store = new JobStore(client, config.keyPrefix, { jobTtlSeconds: 3600 });
    await startWorker(config);
    const doc = await waitForJob(store, (await store.create({ urls: [`${origin}/`], maxDepth: 0, maxPages: 5, scope: 'host', fetchImages: true, archive: true })).id, 30_000);
    const files = await store.imageFiles(doc.id);
    expect(files.map((f) => f.sha256).sort()).toEqual([...new Set([...contents.values()].map(sha256Of))].sort());

    // in Swift, under the job: the three contents (the copy is one of them) and the page's body for the archive
    const swiftClient = new SwiftClient(auth);
    const objects = [];
    for await (const item of swiftClient.listObjects(container, { prefix: `${doc.id}/` })) objects.push(item);
    const imageObjects = objects.filter((o) => o.name.endsWith('.png'));
    expect(imageObjects.map((o) => o.name).sort()).toEqual(files.map((f) => `${doc.id}/${f.location}`).sort());
    expect(objects.filter((o) => o.name.endsWith('.body')).length).toBe(1);
    for (const object of imageObjects) {
      const read = await swiftClient.getObject(container, object.name);
      expect(sha256Of(await readAll(read!.stream))).toBe(/([0-9a-f]{64})\.png$/.exec(object.name)![1]);
    }
    // Redis keeps only the budget: sizes, not bytes
    expect(Number(await client.hget(store.keys.imageBlobs(doc.id), '#bytes'))).toBe(objects.reduce((n, o) => n + o.bytes, 0));

    const token = 'swift-store-token-0123-4567-89ab-cdef';
    const baseUrl = await startApi(config, token);
    for (const file of files) {
      const answer = await fetch(`${baseUrl}/v1/jobs/${doc.id}/files/${file.sha256}`);
      expect(answer.status).toBe(200);
      expect(sha256Of(Buffer.from(await answer.arrayBuffer()))).toBe(file.sha256);
    }
    const downloadDir = await mkdtemp(path.join(tmpdir(), 'crawl-download-'));
    scratch.push(downloadDir);
    const done = await downloadJobFiles(new CrawlerClient({ baseUrl, token }), baseUrl, doc.id, downloadDir, {}, () => undefined);
    expect(done).toMatchObject({ files: 3, totalFiles: 3 });
    for (const file of files) expect(sha256Of(await readFile(path.join(downloadDir, `${file.sha256}.png`)))).toBe(file.sha256);
    const wacz = await fetch(`${baseUrl}/v1/jobs/${doc.id}/archive.wacz`, { headers: { authorization: `Bearer ${token}` } });
    expect(wacz.status).toBe(200);
    // the page and its images, each with its stored body
    expect(Number(wacz.headers.get('x-wacz-pages'))).toBe(1);
    expect(Number(wacz.headers.get('x-wacz-records'))).toBeGreaterThanOrEqual(4);
    await wacz.arrayBuffer();

    // a content gone from Swift is answered as gone, not as an error
    await swiftClient.deleteObject(container, imageObjects[0]!.name);
    const gone = await fetch(`${baseUrl}/v1/jobs/${doc.id}/files/${/([0-9a-f]{64})\.png$/.exec(imageObjects[0]!.name)![1]}`);
    expect(gone.status).toBe(410);
    expect(await gone.text()).toContain(`swift container ${container}`);

    // a job whose budget holds one content: the first stored, the others store-full and never written
    const size = contents.get('/a.png')!.length;
    // (below the config's 1 KiB floor, set past its check: these test images are smaller than that)
    const loaded = await swiftConfig(container);
    const tight = { ...loaded, images: { ...loaded.images, swift: { ...loaded.images.swift!, maxJobBytes: Math.floor(size * 1.5) } } };
    const tightStore = new JobStore(client, tight.keyPrefix, { jobTtlSeconds: 3600 });
    await startWorker(tight);
    const small = await waitForJob(tightStore, (await tightStore.create({ urls: [`${origin}/`], maxDepth: 0, maxPages: 5, scope: 'host', fetchImages: true })).id, 30_000);
    const full = (await tightStore.imageListing(small.id, 0, 10)).items.map((i) => i.fetch!).filter((f) => f.outcome === 'store-full');
    expect(new Set(full.map((f) => f.sha256)).size).toBe(2);
    expect(full[0]!.error).toMatch(/images\.swift\.maxJobBytes/);
    const kept = [];
    for await (const item of swiftClient.listObjects(container, { prefix: `${small.id}/` })) kept.push(item);
    expect(kept.length).toBe(1);
  });
});

/**
 * depl hibernate's backups in a REAL Swift (test/support/swift.ts, tempauth), on the fake cluster: hibernate on
 * one operator's machine uploads the accessory backup and the release document's copy to the cluster's own
 * container, the record keeping each object's MD5; on another machine that has only the record, wake
 * downloads them (MD5 checked) and restores the accessory that lost its data from them. An object changed in
 * Swift since is refused before anything changes, and nothing half-downloaded is left behind.
 */
let fake: FakeCluster;
let containers: FakeNodeContainers;
let objects: BackupObjects;
let backupClient: SwiftClient;
const hibernateRoots: string[] = [];
const keys = { 'job:7': 'done', 'job:7:images': '12' };
const backupContainer = `shop-depl-backups-${randomBytes(3).toString('hex')}`;
const NODES = ['node-1', 'node-2'];
let hibernateTick = 0;

const redisTarget: AccessoryTarget = {
  name: 'redis', accessory: { image: 'redis:7', node: 'node-2', secrets: [] } as unknown as AccessoryConfig, volume: { name: 'redis-data', target: '/data' }, type: 'redis', kind: 'redis',
};

async function machine(): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'depl-hibernate-swift-'));
  hibernateRoots.push(root);
  await writeInventory({ root }, {
    version: 1, app: 'shop', provider: 'openstack', network: 'shop', updatedAt: '2026-12-06T12:00:00Z',
    nodes: NODES.map((name, i) => ({ name, address: `10.6.0.${i + 2}`, role: i === 0 ? 'manager' : 'worker' })),
  });
  return root;
}

function target(root: string): HibernationTarget {
  const control = fake.freshControl();
  return {
    app: 'shop', domain: fake.domain, root, servers: containers.servers, objects, accessories: [redisTarget], log: silentLogger, by: 'ops@test', pollMs: 10,
    now: () => new Date(Date.UTC(2026, 11, 6, 12, 0, hibernateTick++)),
    timeouts: { shelveMs: 30_000, activeMs: 30_000, swarmMs: 30_000, healthyMs: 30_000 },
    async openPort() {
      if (containers.states.get('c-node-1') !== 'running') throw new Error('connect EHOSTUNREACH 10.6.0.2:22 (the manager is stopped)');
      return { port: { ...control, accessoryData: control.accessoryData!, nodes: control.nodes! }, close: async () => {} };
    },
  };
}

const md5Of = async (file: string) => createHash('md5').update(await readFile(file)).digest('hex');

/**
 * Another operator's machine: the project's .depl/ with the hibernation record only. The first machine's
 * backups are gone with it (they would be at paths of its own, which the record names).
 */
async function otherMachine(from: string): Promise<{ root: string; gone: Map<string, string> }> {
  const root = await machine();
  await copyFile(path.join(from, '.depl', 'hibernation.json'), path.join(root, '.depl', 'hibernation.json'));
  const folder = path.join(from, '.depl', 'backups');
  const gone = new Map<string, string>();
  for (const name of await readdir(folder)) gone.set(name, await md5Of(path.join(folder, name)));
  await rm(folder, { recursive: true });
  return { root, gone };
}

describe('depl hibernate\'s backups in this Swift (fake cluster)', () => {
  beforeAll(async () => {
    fake = await startFakeCluster({ versions: ['v1', 'v2'] });
    await switchVersion(fake.control, 'v2');
    fake.accessories.set('redis', { image: 'redis:7', node: 'node-2', replicas: 1, paused: false, crashed: false, target: '/data', files: new Map(), redis: { version: '7.2.4', aof: true, keys: { ...keys }, saves: 0 } });
    containers = fakeNodeContainers(fake.nodeStates, NODES);
    objects = await swiftBackupObjects(auth, backupContainer);
    backupClient = new SwiftClient(auth);
  });

  afterAll(async () => {
    await Promise.all([fake?.close(), ...hibernateRoots.map((root) => rm(root, { recursive: true, force: true }))]);
  });

  it('hibernate uploads each backup with its MD5 recorded; wake on a machine without them downloads, checks and restores from them', async () => {
    const first = await machine();
    const dry = await hibernate(target(first), { dryRun: true });
    expect(dry.plan.notes.join('\n')).toContain(`private Swift container ${backupContainer} (${swift.storageUrl})`);
    const done = await hibernate(target(first));
    expect(done.plan.steps.filter((s) => s.kind === 'upload-backup').length).toBe(2);
    const record = await readHibernationRecord({ root: first });
    if (record === null || record === 'unreadable') throw new Error('no record');
    const files = [record.releaseCopy!, record.backups.redis!];
    expect(Object.keys(record.swift!.objects).sort()).toEqual([...files].sort());
    for (const file of files) {
      const stored = record.swift!.objects[file]!;
      expect(stored.md5).toBe(await md5Of(file));
      expect(await backupClient.headObject(backupContainer, stored.object)).toMatchObject({ etag: stored.md5, bytes: (await stat(file)).size });
    }
    expect([...containers.states.values()]).toEqual(['exited', 'exited']);
    // a second hibernate finds everything uploaded: nothing to do
    expect((await hibernate(target(first))).plan.steps).toEqual([]);

    // the volume did not survive, and the operator who wakes it is someone else
    const redis = fake.accessories.get('redis')!;
    redis.files.clear();
    redis.redis!.keys = {};
    const { root: second, gone } = await otherMachine(first);
    const woken = await wake(target(second));
    expect(woken.plan.steps.slice(0, 2).map((s) => s.kind)).toEqual(['fetch-backup', 'fetch-backup']);
    expect(woken.restored).toEqual(['redis']);
    expect(redis.redis!.keys).toEqual(keys);
    expect([...containers.states.values()]).toEqual(['running', 'running']);
    expect(await fake.get(fake.domain, '/healthz')).toMatchObject({ status: 200, version: 'v2' });
    // the two downloaded (beside them, restore's copy of the empty data it replaced)
    const fetched = (await readdir(path.join(second, '.depl', 'backups'))).filter((name) => gone.has(name)).sort();
    expect(fetched).toEqual(files.map((f) => path.basename(f)).sort());
    for (const name of fetched) {
      const file = path.join(second, '.depl', 'backups', name);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(await md5Of(file)).toBe(gone.get(name));
    }
  }, 60_000);

  it('wake refuses an object changed in Swift since hibernate, before anything changes, leaving no partial file', async () => {
    const first = await machine();
    await hibernate(target(first));
    const record = await readHibernationRecord({ root: first });
    if (record === null || record === 'unreadable') throw new Error('no record');
    const redisObject = record.swift!.objects[record.backups.redis!]!.object;
    const original = await readFile(record.backups.redis!);
    await backupClient.putObject(backupContainer, redisObject, Buffer.concat([original, Buffer.from('tampered')]));

    const { root: second } = await otherMachine(first);
    const refused = await wake(target(second)).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'OBJECT_STORE_CORRUPT', message: expect.stringContaining(`${backupContainer}/${redisObject} from Swift has MD5`) });
    expect([...containers.states.values()]).toEqual(['exited', 'exited']);
    expect(await readHibernationRecord({ root: second })).toMatchObject({ phase: 'hibernating', complete: true });
    expect((await readdir(path.join(second, '.depl', 'backups'))).filter((n) => n.endsWith('.part') || n === redisObject)).toEqual([]);

    // the right bytes back: the next wake finishes
    await backupClient.putObject(backupContainer, redisObject, original);
    expect((await wake(target(second))).plan.steps.filter((s) => s.kind === 'fetch-backup').length).toBe(1);
    expect([...containers.states.values()]).toEqual(['running', 'running']);
    expect(await readHibernationRecord({ root: second })).toBeNull();
  }, 60_000);
});
