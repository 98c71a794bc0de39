import type { CommandContext } from '../context.js';
import { OperationError, UserError } from '../../errors.js';
import { parseDuration } from '../../plan/duration.js';
import { crawlerClient } from '../crawl-client.js';
import { callApi, describeJob, progressLine, waitForCrawl } from '../../workflows/crawl.js';

export default async function command(ctx: CommandContext, urls: string[], opts: { depth: number; maxPages: number; include?: string[]; exclude?: string[]; archive?: boolean; wait?: boolean; timeout?: string; api?: string; insecure?: boolean; cacert?: string }): Promise<void> {
  if (opts.timeout !== undefined && !opts.wait) throw new UserError('--timeout applies to --wait only', 'Add --wait, or drop --timeout.', 'BAD_TIMEOUT');
  const timeoutMs = opts.timeout === undefined ? undefined : parseDuration(opts.timeout, '--timeout');
  const { client, where } = await crawlerClient({ api: opts.api, configFile: ctx.globals.config, insecure: opts.insecure, caCert: opts.cacert });
  let job = await callApi(where, () => client.submit({ urls, maxDepth: opts.depth, maxPages: opts.maxPages, include: opts.include ?? [], exclude: opts.exclude ?? [], ...(opts.archive ? { archive: true } : {}) }));
  if (opts.wait) {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    job = await waitForCrawl(client, where, job.id, (progress) => {
      if (ctx.progress) process.stderr.write(`\r${progressLine(progress)}`);
    }, 500, deadline);
    if (ctx.progress) process.stderr.write('\n');
    if (job.status === 'running') {
      throw new OperationError(`job ${job.id} is still running after ${opts.timeout} (${job.counts.fetched} pages fetched, ${job.counts.pending} pending)`,
        `It keeps running: follow it with 'depl crawl status ${job.id}'.`, 'CRAWL_WAIT_TIMEOUT');
    }
  } else {
    ctx.log.info(`follow it with: depl crawl status ${job.id}`);
  }
  ctx.result(job, describeJob(job));
}
