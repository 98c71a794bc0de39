import type { CommandContext } from '../context.js';
import { imagesCsv } from '@depl/crawler/client';
import { callApi, crawlerClientFor } from '../../workflows/crawl.js';

export default async function command(ctx: CommandContext, id: string, opts: { format: 'json' | 'csv'; api?: string; insecure?: boolean; cacert?: string }): Promise<void> {
  const { client, where } = await crawlerClientFor({ api: opts.api, configFile: ctx.globals.config, insecure: opts.insecure, caCert: opts.cacert });
  const images = await callApi(where, () => client.allImages(id));
  if (opts.format === 'csv' && !ctx.globals.json) process.stdout.write(imagesCsv(images));
  else process.stdout.write(JSON.stringify(images, null, 2) + '\n');
}
