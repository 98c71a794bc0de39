import { randomBytes, randomUUID, createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCrawlerApi } from '../../crawler/src/api/app.js';
import { CrawlerClient } from '../../crawler/src/client.js';
import { loadServiceConfig, type ServiceConfig } from '../../crawler/src/config.js';
import { ServiceSecret } from '../../crawler/src/core/secret.js';
import { imageStoreFor, SwiftImageStore, type SettleTiming } from '../../crawler/src/image-store.js';
import { deleteJob } from '../../crawler/src/job-deletion.js';
import { CONSUMER_GROUP } from '../../crawler/src/keys.js';
import { SwiftContainer, SwiftError, type PutOptions } from '../../crawler/src/swift.js';
import { tempAuth } from '../../crawler/src/swift-auth.js';
import { JobStore, taskFromFields } from '../../crawler/src/jobs.js';
import { CrawlWorker } from '../../crawler/src/worker/crawl-worker.js';
import { KeystoneSession } from '../../src/apply/openstack/keystone.js';
import { keystoneObjectStore, SwiftClient, tempAuthObjectStore, type ObjectStoreAuth } from '../../src/apply/openstack/swift.js';
import { downloadJobFiles } from '../../src/workflows/crawl.js';
import { waitForJob } from '../support/crawler.js';
import { deleteRacing, DELETE_BOUNDARIES } from '../support/delete-race.js';
import { racingRedis } from '../support/redis-race.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../support/openstack-emulator/index.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { expirerLog, startSwift, type TestKeystoneSwift, type TestSwift } from '../support/swift.js';
import { png, serveImagePage, sha256Of } from '../support/synthetic-images.js';
import { waitFor } from '../support/wait.js';
import { readHibernationRecord } from '../../src/apply/hibernation-record.js';
import { swiftBackupObjects, type BackupObjects } from '../../src/apply/hibernation-objects.js';
import { writeInventory } from '../../src/apply/inventory.js';
import type { AccessoryConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/util/log.js';
import type { AccessoryTarget } from '../../src/workflows/backup.js';
import { hibernate, wake, type HibernationTarget } from '../../src/workflows/hibernation.js';
import { hibernationStatus } from '../../src/workflows/status.js';
import { switchVersion } from '../../src/workflows/switch.js';
import { startFakeCluster, type FakeCluster } from '../support/fake-cluster.js';
import { fakeNodeContainers, type FakeNodeContainers } from '../support/fake-node-containers.js';

/**
 * depl's Swift client, the crawler's `swift` image store and depl hibernate's backups (on the fake cluster)
 * against a real Swift (Debian's proxy, account, container and object servers on loopback) and a real Redis. No
 * real cluster. The Swift has two proxies on the same storage: one with tempauth, one behind Keystone as Nectar's
 * is (keystonemiddleware's authtoken and keystoneauth, validating every token against the emulator's Keystone).
 */
let swift: TestSwift & { keystone?: TestKeystoneSwift };
let redis: TestRedis;
let client: Redis;
let auth: ObjectStoreAuth;
/** The Keystone in front of the second proxy, and an object-store login of depl's own into that project's account. */
let cloud: OpenStackEmulator;
let keystoneAccount = 'http://127.0.0.1:9/not-started-yet';
let projectAuth: ObjectStoreAuth;
const CREDENTIAL = { id: 'crawler-ac', secret: `ac-secret-${randomUUID()}` };
const scratch: string[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  cloud = await startOpenStackEmulator({
    servers: { createServer: async () => ({ address: '10.0.0.1' }), deleteServer: async () => {} },
    // the project's member (whose application credential the crawler logs in with) and Swift's service user
    users: [{ name: 'demo', password: 'demo-password' }, { name: 'swift', password: 'swift-service-password', roles: ['admin'] }],
    applicationCredentials: [{ ...CREDENTIAL, user: 'demo' }],
    services: { objectStore: () => keystoneAccount },
  });
  const credentialToken = async () => {
    const response = await request(`${cloud.authUrl}/auth/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ auth: { identity: { methods: ['application_credential'], application_credential: CREDENTIAL } } }) });
    await response.body.dump();
    return String(response.headers['x-subject-token']);
  };
  [swift, redis] = await Promise.all([
    startSwift({
      keystone: { authUrl: cloud.authUrl, serviceUser: { name: 'swift', password: 'swift-service-password', projectName: cloud.projectName }, projectId: cloud.projectId, readyToken: credentialToken },
      expirer: { intervalSeconds: 1 },
    }),
    startRedis(),
  ]);
  keystoneAccount = swift.keystone!.accountUrl(cloud.projectId);
  client = new Redis(redis.url, { maxRetriesPerRequest: null });
  client.on('error', () => undefined);
  auth = tempAuthObjectStore({ authUrl: swift.authUrl, user: swift.user, key: swift.key });
  await startExpiring();
  const session = new KeystoneSession({ authUrl: cloud.authUrl, regionName: cloud.region, interface: 'public', auth: { type: 'application_credential', id: CREDENTIAL.id, secret: CREDENTIAL.secret }, source: 'test' });
  projectAuth = (await keystoneObjectStore(session))!;
});

/**
 * Swift's expirer daemon, shown without adding a wait to the file: an object written at the start with an
 * X-Delete-At 2 s on; once Swift answers 404 for it, one container-updater sweep (the expirer's account then
 * lists its task container) runs in the background while the other tests run; the file's last test checks the
 * object has left the container's listing.
 */
const expiring = { name: 'soon.png', deleteAt: 0, written: 0, container: undefined as SwiftContainer | undefined, swept: Promise.resolve() };

async function startExpiring(): Promise<void> {
  const container = new SwiftContainer(tempAuth({ authUrl: swift.authUrl, user: swift.user, key: new ServiceSecret(swift.key) }), `expiring-${randomUUID().slice(0, 8)}`);
  expiring.container = container;
  expiring.written = Date.now();
  expiring.deleteAt = Math.floor(expiring.written / 1000) + 2;
  await container.put(expiring.name, Buffer.from('soon'), { deleteAt: expiring.deleteAt });
  await container.put('later.png', Buffer.from('later'), { deleteAt: expiring.deleteAt + 3600 });
  expiring.swept = (async () => {
    await waitFor('Swift to answer 404 for the expired object', async () => (await container.head(expiring.name) ? undefined : true), 60_000, 250);
    await swift.updateContainers!();
  })();
  // (awaited by the last test; a rejection here is reported there)
  expiring.swept.catch(() => undefined);
}

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

afterAll(async () => {
  client?.disconnect();
  await Promise.all([swift?.stop(), redis?.stop(), cloud?.close(), ...scratch.map((dir) => rm(dir, { recursive: true, force: true }))]);
});

const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** An object's X-Delete-At (Unix seconds), read with a HEAD through the given login; undefined without one. */
async function deleteAtOf(login: ObjectStoreAuth, container: string, name: string): Promise<number | undefined> {
  const { storageUrl, token } = await login.access();
  const response = await request(`${storageUrl}/${container}/${name.split('/').map(encodeURIComponent).join('/')}`, { method: 'HEAD', headers: { 'x-auth-token': token } });
  await response.body.dump();
  expect(response.statusCode).toBe(200);
  const value = response.headers['x-delete-at'];
  return typeof value === 'string' ? Number(value) : undefined;
}

async function objectsOf(login: ObjectStoreAuth, container: string, job: string) {
  const objects = [];
  for await (const item of new SwiftClient(login).listObjects(container, { prefix: `${job}/` })) objects.push(item);
  return objects;
}

/** Waits until every object of an ended job expires when its Redis record does (within 2 s), and returns that time. */
async function expiryFollowsJob(login: ObjectStoreAuth, container: string, job: string, store: JobStore): Promise<number> {
  const names = (await objectsOf(login, container, job)).map((o) => o.name);
  expect(names.length).toBeGreaterThan(0);
  let last = '';
  return waitFor(`the objects of job ${job} to expire with its record`, async () => {
    const left = await client.pttl(store.keys.job(job));
    if (left <= 0) throw new Error(`the job's record has no expiry (PTTL ${left})`);
    const expected = (Date.now() + left) / 1000;
    const deleteAts = await Promise.all(names.map((name) => deleteAtOf(login, container, name)));
    last = `record expires at ${expected.toFixed(0)}, objects at ${deleteAts.join(', ')}`;
    return deleteAts.every((at) => at !== undefined && Math.abs(at - expected) <= 2) ? Math.round(expected) : undefined;
  }, 20_000, 100).catch((error: Error) => {
    throw new Error(`${error.message}: ${last}`);
  });
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
  /** The service config with the store in `container`, through tempauth or (`keystone`) the application credential. */
  async function swiftConfig(container: string, login: 'tempauth' | 'keystone' = 'tempauth'): Promise<ServiceConfig> {
    const dir = await mkdtemp(path.join(tmpdir(), 'crawler-swift-'));
    scratch.push(dir);
    const secret = login === 'tempauth' ? swift.key : CREDENTIAL.secret;
    await writeFile(path.join(dir, 'swift_secret'), `${secret}\n`, { mode: 0o600 });
    const store = login === 'tempauth'
      ? { authUrl: swift.authUrl, user: swift.user, keyFile: path.join(dir, 'swift_secret'), container }
      : { keystone: { authUrl: cloud.authUrl, applicationCredentialId: CREDENTIAL.id, applicationCredentialSecretFile: path.join(dir, 'swift_secret') }, container };
    const file = path.join(dir, 'config.json');
    await writeFile(file, JSON.stringify({
      redis: redis.url,
      keyPrefix: `swift-${randomUUID().slice(0, 8)}:`,
      allow: { networks: ['127.0.0.1/32'] },
      worker: { concurrency: 8, visibilityTimeoutMs: 1500, retryBaseMs: 50, fetchTimeoutMs: 5000 },
      images: { store: 'swift', swift: store },
    }));
    // the secret travels as a secret file, as a swarm secret would be mounted
    expect(await readFile(file, 'utf8')).not.toContain(secret);
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
    const site = await serveImagePage(contents);
    cleanups.push(site.close);
    return site.origin;
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
    // and the objects expire with the job's record (X-Delete-At set once the job ended), not after it
    await expiryFollowsJob(auth, container, doc.id, store);

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

    // deleting the first job removes its objects (they are its own, under <job>/) and its keys; the other job's object stays
    const deleted = await fetch(`${baseUrl}/v1/jobs/${doc.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(deleted.status).toBe(204);
    // the three left: two images (one was deleted above) and the page's body
    expect(deleted.headers.get('x-contents-removed')).toBe(String(objects.length - 1));
    expect(await objectsOf(auth, container, doc.id)).toEqual([]);
    expect(await client.keys(`${config.keyPrefix}job:${doc.id}*`)).toEqual([]);
    expect((await objectsOf(auth, container, small.id)).length).toBe(1);
    // a write for a job being deleted keeps nothing
    await tightStore.cancel(small.id);
    await client.hset(tightStore.keys.job(small.id), 'status', 'deleting');
    const late = png(4, 4, 99);
    expect(await imageStoreFor(tight, client, tightStore.keys).put(small.id, sha256Of(late), 'png', late)).toMatchObject({ written: false });
    expect((await objectsOf(auth, container, small.id)).length).toBe(1);
  });

  it('a worker\'s sweep settles a job whose settler died: once its lease lapses, the objects expire with the job', async () => {
    const container = `crawler-${randomUUID().slice(0, 8)}`;
    const config = await swiftConfig(container);
    const jobs = new JobStore(client, config.keyPrefix, { jobTtlSeconds: 3600 });
    const store = imageStoreFor(config, client, jobs.keys);
    const { id } = await jobs.create({ urls: ['http://site.test/'], maxDepth: 0, maxPages: 1, scope: 'host', fetchImages: true });
    const reply = await client.xreadgroup('GROUP', CONSUMER_GROUP, 'a-worker-that-dies', 'COUNT', 1, 'STREAMS', jobs.keys.tasks, '>') as Array<[string, Array<[string, string[]]>]>;
    const [messageId, fields] = reply[0]![1][0]!;
    for (const shade of [41, 42]) {
      const bytes = png(5, 5, shade);
      expect(await store.put(id, sha256Of(bytes), 'png', bytes)).toMatchObject({ written: true });
    }
    const task = taskFromFields(fields)!;
    await jobs.complete(messageId, task, { outcome: 'fetched', page: { url: task.url, depth: 0, outcome: 'fetched' }, images: [], children: [] });
    // what that worker left when it was killed in the middle of settling: its lease (lapsing in a second), and the
    // job due when it lapses (CLAIM_STORE_EXPIRY)
    const [seconds] = await client.time();
    await client.set(jobs.keys.storeExpiry(id), 'lease-of-the-killed-worker', 'PX', 1000);
    await client.zadd(jobs.keys.storeSettleDue, Number(seconds) * 1000 + 1000, id);
    await startWorker(config);
    await expiryFollowsJob(auth, container, id, jobs);
    expect(await client.get(jobs.keys.storeExpiry(id))).toBe('settled');
    expect(await client.zscore(jobs.keys.storeSettleDue, id)).toBeNull();
  });

  it('on a Swift behind Keystone (Nectar\'s way): logs in with an application credential, logs in again after a 401, and the objects expire with their job', async () => {
    const contents = new Map([['/k1.png', png(8, 8, 33)], ['/k2.png', png(8, 8, 66)]]);
    const origin = await startSite(contents);
    const container = `crawler-ks-${randomUUID().slice(0, 8)}`;
    const config = await swiftConfig(container, 'keystone');
    expect(config.images.swift!.keystone).toMatchObject({ applicationCredentialId: CREDENTIAL.id, interface: 'public' });
    const store = new JobStore(client, config.keyPrefix, { jobTtlSeconds: 3600 });
    await startWorker(config);
    const doc = await waitForJob(store, (await store.create({ urls: [`${origin}/`], maxDepth: 0, maxPages: 5, scope: 'host', fetchImages: true })).id, 30_000);
    const files = await store.imageFiles(doc.id);
    expect(files.map((f) => f.sha256).sort()).toEqual([...contents.values()].map(sha256Of).sort());
    // in the project's own account, AUTH_<project>, which the catalog named (read with depl's client and Keystone session)
    expect((await projectAuth.access()).storageUrl).toBe(`${swift.keystone!.proxyUrl}/v1/AUTH_${cloud.projectId}`);
    expect((await objectsOf(projectAuth, container, doc.id)).map((o) => o.name).sort()).toEqual(files.map((f) => `${doc.id}/${f.location}`).sort());
    await expiryFollowsJob(projectAuth, container, doc.id, store);

    // Keystone revokes every token: keystonemiddleware asks Keystone about each request, so Swift answers 401;
    // the API logs in once more and serves the files on
    const token = 'swift-store-token-0123-4567-89ab-cdef';
    const baseUrl = await startApi(config, token);
    const readBack = async () => {
      for (const file of files) {
        const answer = await fetch(`${baseUrl}/v1/jobs/${doc.id}/files/${file.sha256}`);
        expect(answer.status).toBe(200);
        expect(sha256Of(Buffer.from(await answer.arrayBuffer()))).toBe(file.sha256);
      }
    };
    await readBack();
    const issued = cloud.tokensIssued();
    const validations = () => cloud.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/identity/v3/auth/tokens')).length;
    const validated = validations();
    cloud.revokeTokens();
    await readBack();
    // one new login by the API (the proxy's own service token was revoked too: it logs in again as well)
    expect(cloud.tokensIssued() - issued).toBeGreaterThanOrEqual(2);
    expect(validations()).toBeGreaterThan(validated);

    // a job still running: what is written for it expires provisionally, its retention plus unfinishedJobSeconds on
    const unserved = { ...config, keyPrefix: `unserved-${randomUUID().slice(0, 8)}:` };
    const unservedStore = new JobStore(client, unserved.keyPrefix, { jobTtlSeconds: 3600 });
    const running = await unservedStore.create({ urls: [`${origin}/`], maxDepth: 0, maxPages: 1, scope: 'host', fetchImages: true });
    const bytes = png(4, 4, 7);
    const written = Math.floor(Date.now() / 1000);
    expect(await imageStoreFor(unserved, client, unservedStore.keys).put(running.id, sha256Of(bytes), 'png', bytes)).toMatchObject({ written: true });
    const [provisional] = await objectsOf(projectAuth, container, running.id);
    expect(Math.abs(await deleteAtOf(projectAuth, container, provisional!.name) as number - (written + 3600 + config.images.swift!.unfinishedJobSeconds))).toBeLessThanOrEqual(3);

    // a job kept for seconds only: its objects carry that expiry, then Swift answers 404 for them as Redis
    // forgets the job (the object server refuses an object past X-Delete-At; the expirer daemon removes such an
    // object later: shown at the end of this file)
    const brief = new JobStore(client, config.keyPrefix, { jobTtlSeconds: 8 });
    const short = await waitForJob(brief, (await brief.create({ urls: [`${origin}/`], maxDepth: 0, maxPages: 5, scope: 'host', fetchImages: true })).id, 30_000);
    const names = (await objectsOf(projectAuth, container, short.id)).map((o) => o.name);
    expect(names.length).toBe(2);
    const expiresAt = await expiryFollowsJob(projectAuth, container, short.id, brief);
    await waitFor('the brief job\'s objects to be gone from Swift and its record from Redis', async () => {
      const { storageUrl, token: swiftToken } = await projectAuth.access();
      const statuses = await Promise.all(names.map(async (name) => {
        const answer = await request(`${storageUrl}/${container}/${name}`, { headers: { 'x-auth-token': swiftToken } });
        await answer.body.dump();
        return answer.statusCode;
      }));
      return statuses.every((status) => status === 404) && await client.exists(brief.keys.job(short.id)) === 0 ? true : undefined;
    }, 30_000, 200);
    // not before their time
    expect(Date.now() / 1000).toBeGreaterThanOrEqual(expiresAt - 2);
  });
});

/**
 * The `swift` store's writes and settle racing the job's delete and the job's end, in exact interleavings: a write
 * or an expiry change is held inside the container (a stand-in that runs the other side first), or the other side
 * runs once the store's first question to Redis has its answer.
 */
describe('crawler image store in Swift: racing the job\'s delete and its own settle', () => {
  /**
   * The container, except that a write, expiry change or delete waits for `race` (first come, first served; the
   * next call, or the one after `skip` more), which may also throw what Swift's answer would. `deleteAnswer`
   * 'removed' stands in for Swift answering 204 to a DELETE of an object another DELETE has just removed (what two
   * DELETEs of one object that reach an object server together may both get: each reads the object as there
   * before either writes its tombstone); this test's Swift, with one object server, answers the later one 404.
   */
  class HeldContainer extends SwiftContainer {
    readonly holds: Array<{ method: 'put' | 'expireAt' | 'delete'; race: () => Promise<unknown>; skip?: number }> = [];
    deleteAnswer: 'swift' | 'removed' = 'swift';

    override async put(name: string, bytes: Uint8Array, options?: PutOptions): Promise<boolean> {
      await this.held('put');
      return super.put(name, bytes, options);
    }

    override async expireAt(name: string, deleteAt: number): Promise<boolean> {
      await this.held('expireAt');
      return super.expireAt(name, deleteAt);
    }

    override async delete(name: string): Promise<boolean> {
      await this.held('delete');
      const removed = await super.delete(name);
      return this.deleteAnswer === 'removed' || removed;
    }

    private async held(method: 'put' | 'expireAt' | 'delete'): Promise<void> {
      const at = this.holds.findIndex((hold) => hold.method === method);
      if (at < 0) return;
      const hold = this.holds[at]!;
      if ((hold.skip ?? 0) > 0) {
        hold.skip! -= 1;
        return;
      }
      this.holds.splice(at, 1);
      await hold.race();
    }
  }

  /** A hold that says when it is reached and waits until released. */
  function barrier(): { race: () => Promise<void>; reached: Promise<void>; release: () => void } {
    let reach!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((resolve) => { reach = resolve; });
    const released = new Promise<void>((resolve) => { release = resolve; });
    return { race: () => { reach(); return released; }, reached, release };
  }

  const UNFINISHED_SECONDS = 3600;
  const container = `crawler-race-${randomUUID().slice(0, 8)}`;

  function scene() {
    const jobs = new JobStore(client, `race-${randomUUID().slice(0, 8)}:`, { jobTtlSeconds: 3600 });
    const held = new HeldContainer(tempAuth({ authUrl: swift.authUrl, user: swift.user, key: new ServiceSecret(swift.key) }), container);
    const storeOn = (connection: Redis, settle?: SettleTiming) => new SwiftImageStore(held, connection, jobs.keys, 10 * 1024 ** 2, UNFINISHED_SECONDS, settle);
    return { jobs, held, store: storeOn(client), storeOn };
  }

  /** A fetchImages job with its one task taken by a worker: completing that task ends the job. */
  async function jobWithTask(jobs: JobStore): Promise<{ id: string; end(): Promise<number> }> {
    const { id } = await jobs.create({ urls: ['http://site.test/'], maxDepth: 0, maxPages: 1, scope: 'host', fetchImages: true });
    const reply = await client.xreadgroup('GROUP', CONSUMER_GROUP, 'worker-1', 'COUNT', 1, 'STREAMS', jobs.keys.tasks, '>') as Array<[string, Array<[string, string[]]>]>;
    const [messageId, fields] = reply[0]![1][0]!;
    const task = taskFromFields(fields)!;
    return { id, end: () => jobs.complete(messageId, task, { outcome: 'fetched', page: { url: task.url, depth: 0, outcome: 'fetched' }, images: [], children: [] }) };
  }

  async function expectNothingLeftOf(jobs: JobStore, id: string): Promise<void> {
    expect(await client.keys(`${jobs.keys.job(id)}*`)).toEqual([]);
    expect(await objectsOf(auth, container, id)).toEqual([]);
    expect(await client.zscore(jobs.keys.storeSettleDue, id), 'the job\'s place in the settle due set').toBeNull();
  }

  it('a delete takes the job out of the settle due set itself: no sweep has to find it gone first', async () => {
    const { jobs, store } = scene();
    const { id } = await jobWithTask(jobs);
    const bytes = png(5, 5, 9);
    expect(await store.put(id, sha256Of(bytes), 'png', bytes)).toMatchObject({ written: true });
    // a completion while the job ran has put it in the due set, to be looked at again a minute later
    await store.settle(id);
    expect(Number(await client.zscore(jobs.keys.storeSettleDue, id))).toBeGreaterThan(0);
    expect((await jobs.cancel(id))?.status).toBe('cancelled');
    expect(await deleteJob(jobs, store, id)).toMatchObject({ outcome: 'deleted', contentsRemoved: 1 });
    await expectNothingLeftOf(jobs, id);
  });

  it('a settle that a delete overtakes (after its claim, before its first expiry change, or after the delete) leaves no claim and no object behind', async () => {
    for (const when of ['after settle asked Redis', 'before settle changes an expiry', 'before settle'] as const) {
      const { jobs, held, store, storeOn } = scene();
      const { id, end } = await jobWithTask(jobs);
      for (const shade of [1, 2]) {
        const bytes = png(5, 5, shade);
        expect(await store.put(id, sha256Of(bytes), 'png', bytes)).toMatchObject({ written: true });
      }
      await end();
      let deleted: Awaited<ReturnType<typeof deleteJob>> | undefined;
      const deleteWhole = async () => { deleted = await deleteJob(jobs, store, id); };
      if (when === 'after settle asked Redis') {
        // whatever settle asks first, the delete runs whole once it has the answer
        const racing = racingRedis(client, { command: '*', when: 'after' }, deleteWhole);
        await storeOn(racing.redis).settle(id);
        expect(racing.ran()).toBe(true);
      } else if (when === 'before settle changes an expiry') {
        held.holds.push({ method: 'expireAt', race: deleteWhole });
        await store.settle(id);
        expect(held.holds).toEqual([]);
      } else {
        await deleteWhole();
        // a worker's completion that came after the delete (-1) settles too
        await store.settle(id);
      }
      expect(deleted, when).toMatchObject({ outcome: 'deleted', contentsRemoved: 2 });
      await expectNothingLeftOf(jobs, id);
    }
  });

  it('a write that read its expiry while the job ran and reaches Swift after the job ended and settle ran takes the record\'s expiry', async () => {
    const { jobs, held, store } = scene();
    const { id, end } = await jobWithTask(jobs);
    const there = png(5, 5, 3);
    const fresh = png(5, 5, 4);
    expect(await store.put(id, sha256Of(there), 'png', there)).toMatchObject({ written: true });
    // two late writes (a task taken over from a worker that went silent, and its first worker coming back): a new
    // content and one already there, both held in the container after reading their (provisional) expiry
    const first = barrier();
    const second = barrier();
    held.holds.push({ method: 'put', race: first.race }, { method: 'put', race: second.race });
    const writingFresh = store.put(id, sha256Of(fresh), 'png', fresh);
    await first.reached;
    const writingThere = store.put(id, sha256Of(there), 'png', there);
    await second.reached;
    await end();
    await store.settle(id);
    first.release();
    second.release();
    expect(await writingFresh).toMatchObject({ written: true });
    expect(await writingThere).toMatchObject({ written: false });
    const recordExpires = (Date.now() + await client.pttl(jobs.keys.job(id))) / 1000;
    for (const object of await objectsOf(auth, container, id)) {
      const at = await deleteAtOf(auth, container, object.name) as number;
      expect(Math.abs(at - recordExpires), `${object.name} expires at ${at}, its job's record at ${recordExpires.toFixed(0)}`).toBeLessThanOrEqual(2);
    }
    expect((await objectsOf(auth, container, id)).length).toBe(2);
  });

  /** A job that has ended with `count` objects in Swift, each written while it ran (a provisional expiry). */
  async function endedWithObjects(jobs: JobStore, store: SwiftImageStore, count: number): Promise<string> {
    const { id, end } = await jobWithTask(jobs);
    for (let shade = 1; shade <= count; shade++) {
      const bytes = png(5, 5, 100 + shade);
      expect(await store.put(id, sha256Of(bytes), 'png', bytes)).toMatchObject({ written: true });
    }
    await end();
    return id;
  }

  /** How many of the job's objects expire with its record (within 2 s), of how many. */
  async function settledObjects(jobs: JobStore, id: string): Promise<{ settled: number; of: number }> {
    const recordExpires = (Date.now() + await client.pttl(jobs.keys.job(id))) / 1000;
    const objects = await objectsOf(auth, container, id);
    const expiries = await Promise.all(objects.map((object) => deleteAtOf(auth, container, object.name)));
    return { settled: expiries.filter((at) => at !== undefined && Math.abs(at - recordExpires) <= 2).length, of: objects.length };
  }

  it('a settle that Swift fails midway (503 for one object) gives its lease back: the job is due again, and a worker\'s sweep sets every object\'s expiry', async () => {
    const { jobs, held, storeOn } = scene();
    const store = storeOn(client, { retryMs: 300 });
    const id = await endedWithObjects(jobs, store, 3);
    // Swift answers the second expiry change with a 503, as an overloaded proxy or object server does
    held.holds.push({ method: 'expireAt', skip: 1, race: async () => { throw new SwiftError(`Swift refused POST ${id}/... (HTTP 503): Service Unavailable`, 503); } });
    await expect(store.settle(id)).rejects.toThrow(/HTTP 503/);
    expect(await settledObjects(jobs, id)).toEqual({ settled: 1, of: 3 });
    // nobody holds the job, and it is due again shortly
    expect(await client.get(jobs.keys.storeExpiry(id))).toBeNull();
    expect(Number(await client.zscore(jobs.keys.storeSettleDue, id))).toBeGreaterThan(0);
    // another worker's sweep takes it up once it is due; after that the job is settled and due no more
    const other = storeOn(client, { retryMs: 300 });
    await waitFor('a sweep to settle the job', async () => (await other.settleDue() > 0 && await client.zscore(jobs.keys.storeSettleDue, id) === null ? true : undefined), 10_000, 100);
    expect(await settledObjects(jobs, id)).toEqual({ settled: 3, of: 3 });
    expect(await client.get(jobs.keys.storeExpiry(id))).toBe('settled');
    // settled jobs are not settled again: no expiry change is sent
    held.holds.push({ method: 'expireAt', race: async () => { throw new Error('a settled job was settled again'); } });
    await store.settle(id);
    expect(await other.settleDue()).toBe(0);
    held.holds.length = 0;
  });

  it('a settle whose worker dies midway holds the job until its lease lapses; then another worker\'s sweep settles it, and the first coming back changes nothing', async () => {
    const { jobs, held, storeOn } = scene();
    const dying = storeOn(client, { leaseMs: 1500 });
    const id = await endedWithObjects(jobs, dying, 3);
    // the worker stops answering after its first expiry change (killed, or stalled)
    const stalled = barrier();
    held.holds.push({ method: 'expireAt', skip: 1, race: stalled.race });
    const dyingSettle = dying.settle(id);
    await stalled.reached;
    // while its lease runs, another worker's settle leaves the job alone
    const other = storeOn(client, { leaseMs: 1500 });
    await other.settle(id);
    expect(await settledObjects(jobs, id)).toEqual({ settled: 1, of: 3 });
    await waitFor('a sweep to settle the job once the lease lapsed', async () => (await other.settleDue() > 0 && await client.zscore(jobs.keys.storeSettleDue, id) === null ? true : undefined), 10_000, 100);
    expect(await settledObjects(jobs, id)).toEqual({ settled: 3, of: 3 });
    expect(await client.get(jobs.keys.storeExpiry(id))).toBe('settled');
    // the stalled worker goes on: it finds its lease gone and stops; the job stays settled, due no more
    stalled.release();
    await dyingSettle;
    expect(await client.get(jobs.keys.storeExpiry(id))).toBe('settled');
    expect(await client.zscore(jobs.keys.storeSettleDue, id)).toBeNull();
    expect(await settledObjects(jobs, id)).toEqual({ settled: 3, of: 3 });
  });

  it('a job that ends without a worker settling it (its last worker killed after recording the end) is settled by a sweep', async () => {
    const { jobs, storeOn } = scene();
    const store = storeOn(client, { runningLookMs: 300 });
    const { id, end } = await jobWithTask(jobs);
    const bytes = png(5, 5, 77);
    expect(await store.put(id, sha256Of(bytes), 'png', bytes)).toMatchObject({ written: true });
    // each completion of a running job settles nothing, but keeps the job in the due set, to be looked at again
    await store.settle(id);
    expect(Number(await client.zscore(jobs.keys.storeSettleDue, id))).toBeGreaterThan(0);
    await end();
    await waitFor('a sweep to settle the ended job', async () => (await store.settleDue() > 0 && await client.zscore(jobs.keys.storeSettleDue, id) === null ? true : undefined), 10_000, 100);
    expect(await settledObjects(jobs, id)).toEqual({ settled: 1, of: 1 });
  });

  it('two deletes of a job at once count each of its objects once, also when Swift answers both DELETEs of an object with 204', async () => {
    for (const answer of ['swift', 'removed'] as const) {
      const { jobs, held, store } = scene();
      const id = await endedWithObjects(jobs, store, 3);
      held.deleteAnswer = answer;
      // the first delete has listed the job's objects; its DELETE of one of them waits while the second delete runs
      const hold = barrier();
      held.holds.push({ method: 'delete', race: hold.race });
      const first = deleteJob(jobs, store, id);
      await hold.reached;
      const second = await deleteJob(jobs, store, id);
      hold.release();
      const both = [await first, second];
      expect(both.map((deleted) => typeof deleted === 'object' && deleted.outcome), answer).toEqual(['deleted', 'deleted']);
      expect(both.reduce((n, deleted) => n + (typeof deleted === 'object' ? deleted.contentsRemoved : 0), 0), `X-Contents-Removed of the two deletes (Swift's answer: ${answer})`).toBe(3);
      await expectNothingLeftOf(jobs, id);
    }
  });

  it('a write that took its place in the budget before the delete keeps nothing, wherever the delete is when it reaches Swift', async () => {
    for (const at of DELETE_BOUNDARIES) {
      const { jobs, held, store } = scene();
      const { id } = await jobWithTask(jobs);
      const kept = png(5, 5, 5);
      expect(await store.put(id, sha256Of(kept), 'png', kept)).toMatchObject({ written: true });
      // the task of the late write was in flight when the job was cancelled
      expect((await jobs.cancel(id))?.status).toBe('cancelled');
      const late = png(5, 5, 6);
      const hold = barrier();
      held.holds.push({ method: 'put', race: hold.race });
      const writing = store.put(id, sha256Of(late), 'png', late);
      await hold.reached;
      const deleted = await deleteRacing(jobs, store, id, at, async () => {
        hold.release();
        expect(await writing, at).toMatchObject({ written: false });
      });
      expect(deleted, at).toMatchObject({ outcome: 'deleted' });
      await expectNothingLeftOf(jobs, id);
    }
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
  it('the record round trip: hibernate writes the record to Swift (its ETag its MD5); a machine with no record of its own sees it in status and wakes the cluster from it', async () => {
    const first = await machine();
    await hibernate(target(first));
    const local = await readFile(path.join(first, '.depl', 'hibernation.json'));
    expect(await backupClient.headObject(backupContainer, 'hibernation.json')).toMatchObject({ etag: createHash('md5').update(local).digest('hex'), bytes: local.byteLength });
    expect(JSON.parse(local.toString())).toMatchObject({ complete: true, swift: { container: backupContainer, recordShared: true } });

    const second = await machine();
    expect((await hibernationStatus({ root: second }, async () => objects))?.human).toMatch(/^hibernation: hibernating since .* \(by ops@test\): every node container is stopped/);
    const woken = await wake(target(second));
    expect(woken.plan.steps.filter((s) => s.kind === 'fetch-backup').length).toBe(2);
    expect([...containers.states.values()]).toEqual(['running', 'running']);
    expect(await backupClient.headObject(backupContainer, 'hibernation.json')).toBeNull();
    expect(await readHibernationRecord({ root: second })).toBeNull();
  }, 60_000);
});

describe('Swift\'s object expirer (started for this file)', () => {
  it('has taken the object written at the start past its X-Delete-At out of the container listing', async () => {
    const container = expiring.container!;
    const listed = async () => {
      const names = [];
      for await (const name of container.list('')) names.push(name);
      return names;
    };
    await expiring.swept;
    const started = Date.now();
    await waitFor('the expirer to remove the expired object from the listing', async () => ((await listed()).includes(expiring.name) ? undefined : true), 30_000, 200)
      .catch(async (error: Error) => {
        throw new Error(`${error.message}\n${await expirerLog(swift)}`);
      });
    // the other object, not due, is still listed; nothing but the expirer deletes in this container
    expect(await listed()).toEqual(['later.png']);
    console.log(`the expirer removed the object ${((Date.now() - expiring.deleteAt * 1000) / 1000).toFixed(1)} s after its X-Delete-At; this test waited ${Date.now() - started} ms`);
  });
});
