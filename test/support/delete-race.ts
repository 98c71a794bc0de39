import { expect } from 'vitest';
import type { ImageStore } from '../../crawler/src/image-store.js';
import { deleteJob, type JobDeletion } from '../../crawler/src/job-deletion.js';
import type { JobStore } from '../../crawler/src/jobs.js';

/** Where a job's delete (job-deletion.ts) is held while a racing step runs: after each of its steps, and after it. */
export const DELETE_BOUNDARIES = ['marked', 'tasks purged', 'contents removed', 'record gone'] as const;
export type DeleteBoundary = typeof DELETE_BOUNDARIES[number];

/**
 * The delete, with `race` run at `at`: before the step that follows it in deleteJob's own order (through a stand-in
 * for the job store or the image store that runs `race` first), or once the delete has finished. Fails when the
 * delete never got there (its steps renamed or reordered): such a test would prove nothing.
 */
export async function deleteRacing(jobs: JobStore, store: ImageStore, id: string, at: DeleteBoundary, race: () => Promise<unknown>): Promise<JobDeletion | 'not-found' | 'running'> {
  if (at === 'record gone') {
    const deleted = await deleteJob(jobs, store, id);
    await race();
    return deleted;
  }
  let ran = false;
  const before = <T extends object>(target: T, method: string): T => new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property);
      if (typeof value !== 'function') return value;
      const call = value as (...args: unknown[]) => Promise<unknown>;
      return property === method ? async (...args: unknown[]) => { ran = true; await race(); return call.apply(object, args); } : call.bind(object);
    },
  });
  const deleted = at === 'marked' ? await deleteJob(before(jobs, 'purgeTasks'), store, id)
    : at === 'tasks purged' ? await deleteJob(jobs, before(store, 'removeJob'), id)
      : await deleteJob(before(jobs, 'removeKeys'), store, id);
  expect(ran, `the delete never reached "${at}"`).toBe(true);
  return deleted;
}
