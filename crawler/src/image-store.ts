import { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import { BlobStore } from './blob-store.js';
import type { ServiceConfig } from './config.js';
import type { CrawlerKeys } from './keys.js';
import { LuaScript } from './lua.js';
import { randomUUID } from 'node:crypto';
import { CLAIM_REMOVAL, CLAIM_STORE_EXPIRY, END_BLOB_REMOVAL, END_STORE_EXPIRY, EXTEND_STORE_EXPIRY, HOLD_BLOB, KEEP_UNHELD_BLOB, LET_GO_BLOB, RELEASE_BLOB, REMOVE_JOB_BLOBS, RESERVE_BLOB, STORE_BLOB } from './scripts.js';
import { SwiftContainer } from './swift.js';
import { keystoneAuth, tempAuth, type SwiftAuth } from './swift-auth.js';

/**
 * Where a fetchImages job's contents are kept, as the worker that stores them and the API that serves them see it.
 * Contents are named by their SHA-256 and kept per job (a job's contents are read through the job).
 *
 * Three stores (config `images.store`):
 * - `redis` (the default): in the crawler's Redis, one hash per job (`job:<id>:blobs`, sha256 -> bytes) that
 *   expires with the job's other keys. On a swarm the workers run on several nodes and the API on others; Redis
 *   is the one store every replica already reaches, over the app's network, with its password, on the pinned
 *   node whose volume keeps it (append-only file; `depl backup redis` copies it). The cost is memory: Redis holds
 *   every byte in RAM, so each job may keep at most `images.redisMaxJobBytes` (an image past it is recorded as
 *   `store-full`, not stored).
 * - `directory`: files under `images.storePath` (BlobStore), one per content for all jobs (a content found by
 *   two jobs is one file). Only where every worker and the API see the same directory: one machine, or a shared
 *   mount on every node. Who holds each file is kept in Redis (HOLD_BLOB), so deleting a job removes only the files
 *   no other job holds.
 * - `swift`: an OpenStack Swift container (images.swift), objects named <job>/<location>. Every replica reaches
 *   it over HTTP like Redis, without Redis's memory cost; the job's byte budget (images.swift.maxJobBytes) is
 *   still counted in Redis, in the job's blobs hash, so it expires with the job. The objects expire with the
 *   job too, by Swift's own X-Delete-At: written while the job runs with a provisional expiry (see
 *   images.swift.unfinishedJobSeconds), set to the record's expiry by the first worker that sees the job ended
 *   (settle) or, for one whose write reached Swift as the job ended, by its writer, and written after its end with
 *   that expiry at once.
 */
export interface ImageStore {
  readonly kind: 'redis' | 'directory' | 'swift';
  /**
   * Keeps the bytes once per job; `full` when the job's budget has no room for them (nothing was written).
   * `location` is the content's name in the store: sha256/ab/<hash>.<ext>.
   */
  put(job: string, sha256: string, extension: string, bytes: Uint8Array): Promise<{ location: string; written: boolean } | { full: true; usedBytes: number; maxBytes: number }>;
  /** The stored bytes as a stream and their size; null when they are not (or no longer) there. */
  open(job: string, location: string): Promise<{ stream: Readable; bytes: number } | null>;
  /**
   * Called after each recorded result of a job that keeps contents: a store whose contents do not expire with
   * the job's Redis keys by themselves makes them expire with the job once it has ended.
   */
  settle?(job: string): Promise<void>;
  /** Run by every worker now and then: settles the jobs whose settle is due again (one cut short, or never run). */
  settleDue?(): Promise<number>;
  /**
   * Deleting a job (job-deletion.ts, after the job is marked `deleting`): removes what the store keeps for the job
   * and nobody else holds; returns how many contents were removed. `redis` keeps nothing outside the job's keys.
   */
  removeJob(job: string): Promise<number>;
}

export function imageStoreFor(config: ServiceConfig, redis: Redis, keys: CrawlerKeys): ImageStore {
  if (config.images.store === 'directory') return new DirectoryImageStore(new BlobStore(config.images.storePath), redis, keys);
  if (config.images.store === 'swift') {
    const swift = config.images.swift;
    if (swift === undefined) throw new Error('images.store is swift, but images.swift is missing');
    return new SwiftImageStore(new SwiftContainer(swiftAuthFor(config), swift.container), redis, keys, swift.maxJobBytes, swift.unfinishedJobSeconds);
  }
  return new RedisImageStore(redis, keys, config.images.redisMaxJobBytes);
}

/** Keystone v3 when images.swift.keystone is given, else tempauth; the secret is the one read from its file at start. */
export function swiftAuthFor(config: ServiceConfig): SwiftAuth {
  const swift = config.images.swift;
  const secret = config.swiftKey;
  if (swift === undefined || secret === undefined) throw new Error('images.store is swift, but images.swift or its secret file was not read');
  const keystone = swift.keystone;
  if (keystone === undefined) return tempAuth({ authUrl: swift.authUrl!, user: swift.user!, key: secret });
  const login = keystone.applicationCredentialId !== undefined
    ? { kind: 'application_credential' as const, id: keystone.applicationCredentialId, secret }
    : {
      kind: 'password' as const, username: keystone.username!, userDomainName: keystone.userDomainName, password: secret,
      project: keystone.projectId !== undefined ? { id: keystone.projectId } : { name: keystone.projectName!, domainName: keystone.projectDomainName },
    };
  return keystoneAuth({ authUrl: keystone.authUrl, login, interface: keystone.interface, region: keystone.region });
}

/** The name of the job's contents' byte total inside its blobs hash (content fields are 64 hex digits). */
const TOTAL_FIELD = '#bytes';
const storeBlob = new LuaScript(STORE_BLOB);
const removeJobBlobs = new LuaScript(REMOVE_JOB_BLOBS);

export class RedisImageStore implements ImageStore {
  readonly kind = 'redis';
  constructor(private readonly redis: Redis, private readonly keys: CrawlerKeys, readonly maxJobBytes: number) {}

  async put(job: string, sha256: string, extension: string, bytes: Uint8Array) {
    const location = BlobStore.locationOf(sha256, extension);
    const answer = Number(await storeBlob.run(this.redis, [this.keys.imageBlobs(job), this.keys.job(job)], [sha256, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), this.maxJobBytes, TOTAL_FIELD]));
    if (answer < 0) return { full: true as const, usedBytes: -answer - 1, maxBytes: this.maxJobBytes };
    return { location, written: answer === 1 };
  }

  async open(job: string, location: string) {
    const sha256 = contentOf(location);
    const bytes = await this.redis.hgetBuffer(this.keys.imageBlobs(job), sha256);
    if (bytes === null) return null;
    return { stream: Readable.from([bytes]), bytes: bytes.length };
  }

  /**
   * The contents are a key of the job's (its blobs hash), removed whole by the delete that counts them (two deletes
   * at once count them once); STORE_BLOB refuses a job being deleted, so nothing brings the hash back.
   */
  async removeJob(job: string): Promise<number> {
    return Number(await removeJobBlobs.run(this.redis, [this.keys.imageBlobs(job)], [TOTAL_FIELD]));
  }
}

const holdBlob = new LuaScript(HOLD_BLOB);
const keepUnheldBlob = new LuaScript(KEEP_UNHELD_BLOB);
const letGoBlob = new LuaScript(LET_GO_BLOB);
const endBlobRemoval = new LuaScript(END_BLOB_REMOVAL);
/** How long a content's removal mark lives when its remover dies before clearing it (a removal is one unlink). */
const REMOVAL_MARK_MS = 30_000;
/** How long a write waits for a content's removal to end before its task fails (and is retried later). */
const REMOVAL_WAIT_MS = 5_000;

export class DirectoryImageStore implements ImageStore {
  readonly kind = 'directory';
  constructor(private readonly blobs: BlobStore, private readonly redis: Redis, private readonly keys: CrawlerKeys) {}

  /**
   * The job takes hold of the content (HOLD_BLOB), then the file is written if it is not there. A job being
   * deleted keeps nothing; one whose delete began while its file was being written lets go of it at once (the
   * delete may have read the job's contents before this one was added).
   */
  async put(job: string, sha256: string, extension: string, bytes: Uint8Array) {
    const location = BlobStore.locationOf(sha256, extension);
    const held = await whileRemoved(REMOVAL_WAIT_MS, `the image store's ${location} is being removed (a job's delete)`, async () =>
      Number(await holdBlob.run(this.redis, [this.keys.job(job), this.keys.storedLocations(job), this.keys.blobHolders(location), this.keys.blobRemoving(location)],
        [job, location, 24 * 3600])));
    if (held === 0) return { location, written: false };
    // its first holder: a file there already, which nobody held, predates holders (KEEP_UNHELD_BLOB)
    if (held === 1 && await this.blobs.has(location)) await keepUnheldBlob.run(this.redis, [this.keys.blobHolders(location)], [job]);
    const written = await this.blobs.put(sha256, extension, bytes);
    if (await jobGoneOrDeleting(this.redis, this.keys, job)) {
      await this.letGo(job, location);
      return { location, written: false };
    }
    return written;
  }

  open(_job: string, location: string) {
    return this.blobs.open(location);
  }

  async removeJob(job: string): Promise<number> {
    let removed = 0;
    for (let cursor = '0'; ;) {
      const [next, locations] = await this.redis.sscan(this.keys.storedLocations(job), cursor, 'COUNT', 500);
      for (const location of locations) if (await this.letGo(job, location)) removed += 1;
      if (next === '0') return removed;
      cursor = next;
    }
  }

  /**
   * The job lets go of one content; its file is removed when nobody holds it any more. True when this call removed
   * it. While another delete removes it, this one waits (at most the removal mark's life, after which a remover
   * that died has left it to this one).
   */
  private async letGo(job: string, location: string): Promise<boolean> {
    const token = randomUUID();
    const last = await whileRemoved(REMOVAL_MARK_MS + REMOVAL_WAIT_MS, `the image store's ${location} is being removed by another delete`, async () =>
      Number(await letGoBlob.run(this.redis, [this.keys.blobHolders(location), this.keys.blobRemoving(location)],
        [job, this.keys.job(''), token, REMOVAL_MARK_MS])));
    if (last !== 1) return false;
    try {
      return await this.blobs.remove(location);
    } finally {
      await endBlobRemoval.run(this.redis, [this.keys.blobRemoving(location)], [token]);
    }
  }
}

/**
 * Runs a Lua step of the directory store until it answers 0 or more: a negative answer means another delete is
 * removing the content's file (its removal mark is up), so it is asked again every 50 ms, for at most `limitMs`.
 */
async function whileRemoved(limitMs: number, what: string, step: () => Promise<number>): Promise<number> {
  for (const started = Date.now(); ;) {
    const answer = await step();
    if (answer >= 0) return answer;
    if (Date.now() - started > limitMs) throw new Error(`${what} for more than ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Is the job gone, or being deleted? (A write that finished after a delete began undoes itself.) */
async function jobGoneOrDeleting(redis: Redis, keys: CrawlerKeys, job: string): Promise<boolean> {
  const status = await redis.hget(keys.job(job), 'status');
  return status === null || status === 'deleting';
}

const reserveBlob = new LuaScript(RESERVE_BLOB);
const SWIFT_DELETES_IN_FLIGHT = 8;
const releaseBlob = new LuaScript(RELEASE_BLOB);
const claimRemoval = new LuaScript(CLAIM_REMOVAL);
const claimStoreExpiry = new LuaScript(CLAIM_STORE_EXPIRY);
const extendStoreExpiry = new LuaScript(EXTEND_STORE_EXPIRY);
const endStoreExpiry = new LuaScript(END_STORE_EXPIRY);
/** How long a settle holds its job (renewed while it works; a worker killed mid-settle holds it no longer). */
const SETTLE_LEASE_MS = 60_000;
/** How much later a settle that failed (Swift refusing or out of reach) is tried again. */
const SETTLE_RETRY_MS = 30_000;
/** How often the sweep looks at a running job (it settles one that ended without a worker seeing it). */
const RUNNING_JOB_SETTLE_LOOK_MS = 60_000;
/** Jobs one sweep settles at most (the next sweep takes the rest). */
const SETTLE_SWEEP_BATCH = 20;

/** The Swift store's settle timings (the defaults above; tests shorten them). */
export interface SettleTiming {
  leaseMs?: number;
  retryMs?: number;
  runningLookMs?: number;
}

/** When a Swift object expires (Unix seconds): `settled`, with its job's record (the job has ended); else provisionally. */
interface ObjectExpiry {
  at: number;
  settled: boolean;
}

export class SwiftImageStore implements ImageStore {
  readonly kind = 'swift';
  private readonly settleTiming: Required<SettleTiming>;
  constructor(private readonly swift: SwiftContainer, private readonly redis: Redis, private readonly keys: CrawlerKeys, readonly maxJobBytes: number, private readonly unfinishedJobSeconds: number,
    settle: SettleTiming = {}) {
    this.settleTiming = { leaseMs: settle.leaseMs ?? SETTLE_LEASE_MS, retryMs: settle.retryMs ?? SETTLE_RETRY_MS, runningLookMs: settle.runningLookMs ?? RUNNING_JOB_SETTLE_LOOK_MS };
  }

  async put(job: string, sha256: string, extension: string, bytes: Uint8Array) {
    const location = BlobStore.locationOf(sha256, extension);
    const answer = Number(await reserveBlob.run(this.redis, [this.keys.imageBlobs(job), this.keys.job(job)], [sha256, bytes.byteLength, this.maxJobBytes, TOTAL_FIELD]));
    if (answer < 0) return { full: true as const, usedBytes: -answer - 1, maxBytes: this.maxJobBytes };
    const name = objectName(job, location);
    if (answer === 0) {
      // the job is gone, or the content has its place: written already, or by a worker that may have died
      // before writing it, so Swift is asked (put writes only what it does not have)
      const expiry = await this.expiryOf(job);
      if (expiry === null) return { location, written: false };
      const written = await this.swift.put(name, bytes, { deleteAt: expiry.at });
      // (an object there already that a delete removes meanwhile is in the delete's listing: it was there before)
      if (!await this.afterWrite(job, name, expiry) && written) {
        await this.swift.delete(name);
        return { location, written: false };
      }
      return { location, written };
    }
    let expiry: ObjectExpiry | null;
    try {
      expiry = await this.expiryOf(job);
      // the job vanished between the reservation and now (ended and expired): nothing to keep, nothing reserved
      if (expiry === null) {
        await releaseBlob.run(this.redis, [this.keys.imageBlobs(job)], [sha256, TOTAL_FIELD]);
        return { location, written: false };
      }
      await this.swift.put(name, bytes, { deleteAt: expiry.at });
    } catch (error) {
      await releaseBlob.run(this.redis, [this.keys.imageBlobs(job)], [sha256, TOTAL_FIELD]);
      throw error;
    }
    if (!await this.afterWrite(job, name, expiry)) {
      await this.swift.delete(name);
      return { location, written: false };
    }
    return { location, written: true };
  }

  /**
   * The job is looked at again once its object is in Swift; false when the object must go. Meanwhile a delete may
   * have begun and listed the job's objects before this one was there (false: it is removed here), or the job may
   * have ended and settle listed them (this object, written with a provisional expiry, takes the record's now:
   * it would outlive the job otherwise, and a write of a content already there moves that one's expiry too).
   */
  private async afterWrite(job: string, name: string, written: ObjectExpiry): Promise<boolean> {
    const now = await this.expiryOf(job);
    if (now === null) return false;
    if (now.settled && !written.settled) await this.swift.expireAt(name, now.at);
    return true;
  }

  /**
   * Objects are per job (<job>/...): every one under the job's name is removed. Each is counted once, whatever the
   * deletes running at once: by the delete that claims it first (CLAIM_REMOVAL), which removes it (a DELETE that
   * fails gives the claim back); another delete removes it too, uncounted (DELETE is idempotent).
   */
  async removeJob(job: string): Promise<number> {
    const names: string[] = [];
    for await (const name of this.swift.list(objectName(job, ''))) names.push(name);
    let removed = 0;
    // a few DELETEs at a time: one round trip each, tens of ms to a distant Swift
    const next = names.values();
    await Promise.all(Array.from({ length: Math.min(SWIFT_DELETES_IN_FLIGHT, names.length) }, async () => {
      for (const name of next) {
        const claimed = Number(await claimRemoval.run(this.redis, [this.keys.job(job), this.keys.removedContents(job)], [name]));
        try {
          await this.swift.delete(name);
        } catch (error) {
          if (claimed === 1) await this.redis.srem(this.keys.removedContents(job), name);
          throw error;
        }
        removed += claimed;
      }
    }));
    return removed;
  }

  open(job: string, location: string) {
    contentOf(location);
    return this.swift.open(objectName(job, location));
  }

  /**
   * Once the job has ended its Redis record expires at a known time (COMPLETE_PAGE / COMPLETE_IMAGES set it):
   * the first worker to see that sets every object of the job to expire then, under a lease on the job
   * (CLAIM_STORE_EXPIRY: one worker at a time, none once it is being deleted). Setting the same expiry twice
   * changes nothing, so a settle cut short is simply run again: one that fails (Swift answering 503 for an object)
   * gives its lease back and the job is due again a little later; one whose worker dies leaves a lease that lapses,
   * with the job due when it does. Due jobs are taken up by every worker's sweep (settleDue). An object written
   * after the listing sets its own expiry (afterWrite); one a delete removes meanwhile stays removed (Swift's POST
   * does not make an object).
   */
  async settle(job: string): Promise<void> {
    const token = randomUUID();
    const keys = [this.keys.job(job), this.keys.storeExpiry(job), this.keys.storeSettleDue];
    const left = Number(await claimStoreExpiry.run(this.redis, keys, [job, token, this.settleTiming.leaseMs, this.settleTiming.runningLookMs]));
    if (left <= 0) return;
    const deleteAt = Math.ceil((Date.now() + left) / 1000);
    try {
      let renewed = Date.now();
      for await (const name of this.swift.list(objectName(job, ''))) {
        if (Date.now() - renewed > this.settleTiming.leaseMs / 3) {
          // the lease lapsed and another worker took the job over: it finishes
          if (Number(await extendStoreExpiry.run(this.redis, keys, [job, token, this.settleTiming.leaseMs])) === 0) return;
          renewed = Date.now();
        }
        await this.swift.expireAt(name, deleteAt);
      }
    } catch (error) {
      await endStoreExpiry.run(this.redis, keys, [job, token, this.settleTiming.retryMs]).catch(() => undefined);
      throw error;
    }
    await endStoreExpiry.run(this.redis, keys, [job, token, 'settled']);
  }

  /**
   * The sweep every worker runs (crawl-worker.ts): settles the jobs that are due (storeSettleDue), those whose
   * settle failed or whose settler went silent, and running jobs as they end without a worker there to see it.
   * Every due job is tried; the first failure is thrown after. Returns how many were due.
   */
  async settleDue(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const due = await this.redis.zrangebyscore(this.keys.storeSettleDue, '-inf', now, 'LIMIT', 0, SETTLE_SWEEP_BATCH);
    const failed: Error[] = [];
    for (const job of due) await this.settle(job).catch((error: Error) => failed.push(error));
    if (failed.length > 0) throw new Error(`setting the expiry of ${failed.length} of ${due.length} due jobs' stored contents failed (tried again later): ${failed[0]!.message}`);
    return due.length;
  }

  /**
   * When an object written now expires: with the job's record once the job has ended (its keys expire then);
   * while it runs, provisionally, its retention plus unfinishedJobSeconds from now. Null: no job (or one being
   * deleted).
   */
  private async expiryOf(job: string): Promise<ObjectExpiry | null> {
    const [[leftError, left], [ttlError, ttl], [statusError, status]] = await this.redis.multi().pttl(this.keys.job(job)).hget(this.keys.job(job), 'ttl').hget(this.keys.job(job), 'status').exec() as [[Error | null, number], [Error | null, string | null], [Error | null, string | null]];
    if (leftError ?? ttlError ?? statusError) throw leftError ?? ttlError ?? statusError;
    if (left === -2 || status === 'deleting') return null;
    if (left > 0) return { at: Math.ceil((Date.now() + left) / 1000), settled: true };
    return { at: Math.floor(Date.now() / 1000) + Number(ttl ?? 0) + this.unfinishedJobSeconds, settled: false };
  }
}

/** A job's content in the Swift container: the job id (a UUID) and the content's location. */
function objectName(job: string, location: string): string {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(job)) throw new Error(`not a job id: ${job.slice(0, 100)}`);
  return `${job}/${location}`;
}

/** The SHA-256 a location names; only locations this crawler makes are accepted. */
function contentOf(location: string): string {
  const match = /^sha256\/[0-9a-f]{2}\/([0-9a-f]{64})\.[a-z0-9]{1,8}$/.exec(location);
  if (match === null) throw new Error(`not a location in the image store: ${location.slice(0, 100)}`);
  return match[1]!;
}
