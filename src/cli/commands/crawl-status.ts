import type { CommandContext } from '../context.js';
import { crawlerClient } from '../crawl-client.js';
import { callApi, describeJob } from '../../workflows/crawl.js';

export default async function command(ctx: CommandContext, id: string, opts: { api?: string; insecure?: boolean; cacert?: string }): Promise<void> {
  const { client, where } = await crawlerClient({ api: opts.api, configFile: ctx.globals.config, insecure: opts.insecure, caCert: opts.cacert });
  const job = await callApi(where, () => client.get(id));
  ctx.result(job, describeJob(job));
}
