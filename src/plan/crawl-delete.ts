import type { JobDocument } from '@depl/crawler/client';
import type { ChangePlan, PlanStep } from './change-plan.js';

/**
 * `depl crawl delete JOB`: a running job is cancelled first (the API refuses to delete a running one), then the
 * job and everything of it is deleted. Neither step can be undone: the plan says so before anything runs.
 */
export type CrawlDeleteStep =
  | (PlanStep & { kind: 'cancel-job'; job: string })
  | (PlanStep & { kind: 'delete-job'; job: string });

export function planCrawlDelete(job: Pick<JobDocument, 'id' | 'status' | 'counts' | 'request'>): ChangePlan<CrawlDeleteStep> {
  const c = job.counts;
  const kept = [
    `${c.fetched + c.failed + c.robots + c.blocked} page records`,
    `${c.images} image URLs`,
    ...(job.request.fetchImages ? [`${c.imageFiles} stored contents`] : []),
    ...(job.request.archive ? ['its archive captures (page bodies)'] : []),
  ];
  const notes = [
    `job ${job.id} is ${job.status}; it has ${kept.join(', ')}`,
    'deleting removes its record, queued tasks, results and indexes, and its contents in the image store (a content another job also holds stays); it cannot be undone',
  ];
  if (job.status === 'deleting') notes.push('a delete of this job was cut short: this one finishes it');
  const steps: CrawlDeleteStep[] = [];
  if (job.status === 'running') {
    steps.push({ kind: 'cancel-job', job: job.id, describe: `cancel job ${job.id} (${c.pending} pages and images still pending are not started)` });
  }
  steps.push({ kind: 'delete-job', job: job.id, describe: `delete job ${job.id} and its data` });
  return { command: `depl crawl delete ${job.id}`, notes, steps };
}
