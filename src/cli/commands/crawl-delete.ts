import { confirm } from '@inquirer/prompts';
import { renderPlanText } from '../../plan/change-plan.js';
import type { CommandContext } from '../context.js';
import { UserError } from '../../errors.js';
import { crawlerClient } from '../crawl-client.js';
import { deleteCrawlJob } from '../../workflows/crawl-delete.js';

export interface DeleteOptions { dryRun?: boolean; api?: string; insecure?: boolean; cacert?: string }

/** Deletes a crawl job and its data, after a confirmation on a terminal (--yes otherwise). */
export default async function command(ctx: CommandContext, id: string, opts: DeleteOptions): Promise<void> {
  const { client, where } = await crawlerClient({ api: opts.api, configFile: ctx.globals.config, insecure: opts.insecure, caCert: opts.cacert });
  const done = await deleteCrawlJob(client, where, id, {
    dryRun: opts.dryRun === true, log: ctx.log,
    async confirm(plan) {
      if (ctx.globals.yes) return true;
      const what = renderPlanText(plan).trimEnd();
      if (!ctx.interactive) throw new UserError(`crawl delete would do this:\n${what}`, 'Pass --yes to confirm.', 'CONFIRMATION_NEEDED');
      process.stderr.write(`${what}\n`);
      return confirm({ message: `Delete job ${id} and its data? This cannot be undone.`, default: false }, { output: process.stderr });
    },
  });
  if (!done.deleted) {
    // --dry-run: the same plan object the applier runs without it
    ctx.result(opts.dryRun === true ? done.plan : { deleted: false }, opts.dryRun === true ? renderPlanText(done.plan).trimEnd() : 'Nothing deleted.');
    return;
  }
  ctx.result({ deleted: id, contentsRemoved: done.contentsRemoved, tasksRemoved: done.tasksRemoved },
    `Deleted job ${id}: ${done.contentsRemoved} stored content${done.contentsRemoved === 1 ? '' : 's'} and ${done.tasksRemoved} queued task${done.tasksRemoved === 1 ? '' : 's'} removed with its records.`);
}
