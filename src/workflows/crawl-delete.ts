import type { CrawlerClient } from '@depl/crawler/client';
import type { ChangePlan } from '../plan/change-plan.js';
import { planCrawlDelete, type CrawlDeleteStep } from '../plan/crawl-delete.js';
import type { Logger } from '../util/log.js';
import { applyPlan } from './apply-plan.js';
import { callApi } from './crawl.js';

export interface CrawlDeleteResult {
  plan: ChangePlan<CrawlDeleteStep>;
  /** false: a dry run, or the operator said no. */
  deleted: boolean;
  contentsRemoved?: number;
  tasksRemoved?: number;
}

/**
 * `depl crawl delete`: reads the job, plans (cancel a running job, then delete), asks `confirm` with the plan,
 * and applies the same plan. A job deleted meanwhile by someone else is reported as not found (exit 2), as the
 * API answers; a rerun after a delete cut short finishes it (the job is listed as `deleting`).
 */
export async function deleteCrawlJob(client: CrawlerClient, where: string, id: string, options: {
  dryRun: boolean; log: Logger; confirm(plan: ChangePlan<CrawlDeleteStep>): Promise<boolean>;
}): Promise<CrawlDeleteResult> {
  const job = await callApi(where, () => client.get(id));
  const plan = planCrawlDelete(job);
  if (options.dryRun || !(await options.confirm(plan))) return { plan, deleted: false };
  let removed = { contentsRemoved: 0, tasksRemoved: 0 };
  await applyPlan(plan, {
    async run(step) {
      if (step.kind === 'cancel-job') await callApi(where, () => client.cancel(step.job));
      else removed = await callApi(where, () => client.delete(step.job));
    },
  }, { log: options.log });
  return { plan, deleted: true, ...removed };
}
