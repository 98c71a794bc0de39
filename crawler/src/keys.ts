/**
 * Every Redis key the crawler uses, under one configurable prefix so apps and test runs can share a Redis.
 * Page tasks of all jobs share one stream; a job's state lives in keys named after its id.
 */
export const CONSUMER_GROUP = 'workers';

/**
 * Image downloads travel on the page stream (same consumers, retries, delays and hand-backs), told apart by
 * this depth, which no page has: the delay, promote and release scripts carry tasks through unchanged.
 */
export const IMAGE_TASK_DEPTH = -1;

export interface CrawlerKeys {
  /** Stream of page tasks, read by the consumer group CONSUMER_GROUP. */
  tasks: string;
  /** Sorted set of tasks waiting for a retry or a host's politeness slot, scored by due time (ms). */
  delayed: string;
  job(id: string): string;
  /** Canonical URLs admitted to the job (dedupe), including robots-disallowed ones. */
  seen(id: string): string;
  /** URLs whose task has completed: makes a redelivered task a no-op. */
  done(id: string): string;
  pages(id: string): string;
  imageSet(id: string): string;
  images(id: string): string;
  /** fetchImages: image URL -> JSON list of the pages it was found on. */
  imagePages(id: string): string;
  /** fetchImages: image URL -> JSON of what downloading it gave (ImageFetchRecord). */
  imageFetches(id: string): string;
  /** fetchImages: sha256 -> JSON of the stored content and the URLs it came from (ImageFile). */
  imageFiles(id: string): string;
  /** The image store `redis` (image-store.ts): sha256 -> the content's bytes, and the field '#bytes' their total. */
  imageBlobs(id: string): string;
  /**
   * The `swift` store: the lease (SET NX, never outliving the job's record) of the one worker that sets the job's
   * objects' exact expiry once the job has ended, then 'settled' until the record expires (image-store.ts,
   * SwiftImageStore.settle).
   */
  storeExpiry(id: string): string;
  /**
   * The `swift` store, shared by every job: the jobs whose objects' expiry is still to be set, scored by when a
   * worker's sweep looks at them (SwiftImageStore.settleDue): a running job, one whose settle failed, one whose
   * settler's lease lapses then.
   */
  storeSettleDue: string;
  /** The `swift` store, while the job is being deleted: the objects its deletes have claimed to remove, each counted by one (CLAIM_REMOVAL). */
  removedContents(id: string): string;
  /** How often each URL's task was taken over from a silent worker (poison-task guard). */
  takeovers(id: string): string;
  robots(origin: string): string;
  /** The shared robots cache's bookkeeping: entries by store time, their sizes, and the total bytes. */
  robotsIndex: string;
  robotsSizes: string;
  robotsBytes: string;
  host(hostname: string): string;
  /** A host's back-off after 429/503 answers, in ms (see PENALISE_HOST). */
  hostPenalty(hostname: string): string;
  /** Requests in flight to a host, across workers: a sorted set of leases scored by their expiry (HOST_ENTER). */
  hostInflight(hostname: string): string;
  /** archive jobs: what was fetched, one JSON capture (request and response metadata, body location) per entry. */
  captures(id: string): string;
  /** Provenance: origin -> JSON of the robots.txt decision the job's workers took for it (ROBOTS_DECISION). */
  robotsDecisions(id: string): string;
  /** The `directory` store: the locations of the contents the job keeps there (what deleting the job lets go of). */
  storedLocations(id: string): string;
  /**
   * The `directory` store, shared by every job: a content's holders (job ids; `*` for holders not recorded, i.e.
   * a file that was there before references were kept). The file goes when its last holder lets it go.
   */
  blobHolders(location: string): string;
  /** Held (SET PX) while a content without holders is being removed: nobody takes it meanwhile. */
  blobRemoving(location: string): string;
}

export function crawlerKeys(prefix: string): CrawlerKeys {
  const job = (id: string) => `${prefix}job:${id}`;
  return {
    tasks: `${prefix}tasks`,
    delayed: `${prefix}delayed`,
    job,
    seen: (id) => `${job(id)}:seen`,
    done: (id) => `${job(id)}:done`,
    pages: (id) => `${job(id)}:pages`,
    imageSet: (id) => `${job(id)}:imageset`,
    images: (id) => `${job(id)}:images`,
    takeovers: (id) => `${job(id)}:takeovers`,
    imagePages: (id) => `${job(id)}:imagepages`,
    imageFetches: (id) => `${job(id)}:imagefetches`,
    imageFiles: (id) => `${job(id)}:imagefiles`,
    imageBlobs: (id) => `${job(id)}:blobs`,
    storeExpiry: (id) => `${job(id)}:store-expiry`,
    storeSettleDue: `${prefix}store-settle-due`,
    removedContents: (id) => `${job(id)}:removed`,
    robots: (origin) => `${prefix}robots:${origin}`,
    robotsIndex: `${prefix}robots-index`,
    robotsSizes: `${prefix}robots-sizes`,
    robotsBytes: `${prefix}robots-bytes`,
    host: (hostname) => `${prefix}host:${hostname}`,
    hostPenalty: (hostname) => `${prefix}host-penalty:${hostname}`,
    hostInflight: (hostname) => `${prefix}host-inflight:${hostname}`,
    captures: (id) => `${job(id)}:captures`,
    robotsDecisions: (id) => `${job(id)}:robots`,
    storedLocations: (id) => `${job(id)}:stored`,
    blobHolders: (location) => `${prefix}blob-holders:${location}`,
    blobRemoving: (location) => `${prefix}blob-removing:${location}`,
  };
}

/**
 * Every key of a job that a delete removes: those that expire together once it has nothing in flight, and those
 * that expire a day later or on their own (captures, robots decisions, the store's expiry claim, stored locations, removed contents).
 * The job's hash comes last: a delete cut short leaves it, marked `deleting`, for the next attempt.
 */
export function allJobKeys(keys: CrawlerKeys, id: string): string[] {
  return [...jobKeyList(keys, id).filter((key) => key !== keys.job(id)), keys.captures(id), keys.robotsDecisions(id), keys.storeExpiry(id),
    keys.storedLocations(id), keys.removedContents(id), keys.job(id)];
}

/** Every key that belongs to one job (they expire together once the job has nothing in flight). */
export function jobKeyList(keys: CrawlerKeys, id: string): string[] {
  return [keys.job(id), keys.seen(id), keys.done(id), keys.pages(id), keys.imageSet(id), keys.images(id), keys.takeovers(id),
    keys.imagePages(id), keys.imageFetches(id), keys.imageFiles(id), keys.imageBlobs(id)];
}
