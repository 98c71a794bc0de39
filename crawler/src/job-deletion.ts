import type { ImageStore } from './image-store.js';
import type { JobStore } from './jobs.js';

/** What a delete did: the job's tasks taken off the queues, its contents removed from the store, its Redis keys removed. */
export interface JobDeletion {
  outcome: 'deleted';
  tasksRemoved: number;
  contentsRemoved: number;
  keysRemoved: number;
}

/**
 * Deletes a job that is not running (DELETE /v1/jobs/{id}), in an order that a delete cut short (the API killed,
 * Redis or the store failing) leaves repairable by the next one:
 * 1. mark it `deleting`: from then on nothing more is stored for it (the store scripts refuse, a write that was
 *    under way undoes itself) and its remaining tasks complete as cancelled;
 * 2. take its tasks off the delayed set, then the shared stream (after the mark no task of it is queued again);
 * 3. remove its contents from the image store (for `directory`, only those no other job holds);
 * 4. remove its keys, the job's record last in the same command.
 * Until step 4 the job is listed as `deleting`, so a second DELETE finds it and finishes; after it, 404.
 * A running job is refused ('running'): the caller cancels it first (a DELETE that used to mean "cancel" must not
 * remove a crawl its client meant to keep).
 */
export async function deleteJob(jobs: JobStore, store: ImageStore, id: string): Promise<JobDeletion | 'not-found' | 'running'> {
  const begun = await jobs.beginDelete(id);
  if (begun !== 'deleting') return begun;
  const tasksRemoved = await jobs.purgeTasks(id);
  const contentsRemoved = await store.removeJob(id);
  const keysRemoved = await jobs.removeKeys(id);
  return { outcome: 'deleted', tasksRemoved, contentsRemoved, keysRemoved };
}
