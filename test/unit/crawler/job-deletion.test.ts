import { describe, expect, it } from 'vitest';
import type { JobDocument } from '../../../crawler/src/jobs.js';
import { delayedTaskJob } from '../../../crawler/src/jobs.js';
import { allJobKeys, crawlerKeys } from '../../../crawler/src/keys.js';
import { renderPlanText } from '../../../src/plan/change-plan.js';
import { planCrawlDelete } from '../../../src/plan/crawl-delete.js';
import { runningJob } from './job-fixture.js';

const job: JobDocument = runningJob({ request: { fetchImages: true, archive: true }, counts: { imagesStored: 50, imageFiles: 44, imagesNotStored: 3 } });

describe('depl crawl delete: the plan', () => {
  it('cancels a running job first, then deletes it; says what goes and that it cannot be undone', () => {
    const plan = planCrawlDelete(job);
    expect(plan.command).toBe(`depl crawl delete ${job.id}`);
    expect(plan.steps).toEqual([
      { kind: 'cancel-job', job: job.id, describe: `cancel job ${job.id} (10 pages and images still pending are not started)` },
      { kind: 'delete-job', job: job.id, describe: `delete job ${job.id} and its data` },
    ]);
    expect(plan.notes[0]).toBe(`job ${job.id} is running; it has 30 page records, 70 image URLs, 44 stored contents, its archive captures (page bodies)`);
    expect(plan.notes[1]).toMatch(/another job also holds stays\); it cannot be undone$/);
    // nothing to undo: no step claims an undo
    expect(plan.steps.every((step) => step.undo === undefined)).toBe(true);
    expect(renderPlanText(plan)).toContain(`  1. cancel job ${job.id}`);
  });

  it('deletes a job that has ended in one step; names a delete cut short, which it finishes', () => {
    const done = planCrawlDelete({ ...job, status: 'done', request: { ...job.request, fetchImages: false, archive: false } });
    expect(done.steps.map((s) => s.kind)).toEqual(['delete-job']);
    expect(done.notes[0]).toBe(`job ${job.id} is done; it has 30 page records, 70 image URLs`);
    const cut = planCrawlDelete({ ...job, status: 'deleting' });
    expect(cut.steps.map((s) => s.kind)).toEqual(['delete-job']);
    expect(cut.notes).toContain('a delete of this job was cut short: this one finishes it');
  });
});

describe('crawler: what a delete removes', () => {
  it('lists every key named after the job, the record last', () => {
    const keys = crawlerKeys('app:');
    const id = 'job-1';
    const perJob = Object.entries(keys).filter(([, value]) => typeof value === 'function').map(([name, make]) => [name, (make as (arg: string) => string)(id)] as const)
      .filter(([, key]) => key.startsWith(`app:job:${id}`));
    const listed = allJobKeys(keys, id);
    // a per-job key added later without being listed here would outlive a delete: this fails then
    expect(new Set(listed)).toEqual(new Set(perJob.map(([, key]) => key)));
    expect(listed.length).toBe(new Set(listed).size);
    expect(listed.at(-1)).toBe('app:job:job-1');
  });

  it('reads the job of a delayed task, and nothing from a member that is not one', () => {
    expect(delayedTaskJob(JSON.stringify({ j: 'job-1', u: 'http://s.test/', d: 0, a: 2 }))).toBe('job-1');
    expect(delayedTaskJob('not json')).toBeNull();
    expect(delayedTaskJob(JSON.stringify({ u: 'http://s.test/' }))).toBeNull();
  });
});
