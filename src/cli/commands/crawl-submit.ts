import type { CommandContext } from '../context.js';
import { callApi, crawlerClientFor, describeJob, progressLine, waitForCrawl } from '../../workflows/crawl.js';

export default async function command(ctx: CommandContext, urls: string[], opts: { depth: number; maxPages: number; wait?: boolean; api?: string; insecure?: boolean; cacert?: string }): Promise<void> {
  const { client, where } = await crawlerClientFor({ api: opts.api, configFile: ctx.globals.config, insecure: opts.insecure, caCert: opts.cacert });
  let job = await callApi(where, () => client.submit({ urls, maxDepth: opts.depth, maxPages: opts.maxPages }));
  if (opts.wait) {
    job = await waitForCrawl(client, where, job.id, (progress) => {
      if (ctx.progress) process.stderr.write(`\r${progressLine(progress)}`);
    });
    if (ctx.progress) process.stderr.write('\n');
  } else {
    ctx.log.info(`follow it with: depl crawl status ${job.id}`);
  }
  ctx.result(job, describeJob(job));
}
