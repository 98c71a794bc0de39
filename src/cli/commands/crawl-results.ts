import type { CommandContext } from '../context.js';
import { imagesCsvHeader, imagesCsvRows, imagesJsonl } from '@depl/crawler/client';
import { crawlerClient } from '../crawl-client.js';
import { callApi } from '../../workflows/crawl.js';

export type ResultsFormat = 'json' | 'csv' | 'jsonl';

/**
 * Streams a job's images to stdout page by page from the API (never the whole result in memory):
 * json (one array), jsonl (one object a line) or csv (RFC 4180, formula-guarded, --bom for spreadsheet apps).
 */
export default async function command(ctx: CommandContext, id: string, opts: { format: ResultsFormat; bom?: boolean; api?: string; insecure?: boolean; cacert?: string }): Promise<void> {
  const { client, where } = await crawlerClient({ api: opts.api, configFile: ctx.globals.config, insecure: opts.insecure, caCert: opts.cacert });
  const format: ResultsFormat = ctx.globals.json ? 'json' : opts.format;
  // the job must exist before anything is written: a wrong id is an error, not an empty document
  await callApi(where, () => client.get(id));
  const out = process.stdout;
  const write = (text: string) => (out.write(text) ? Promise.resolve() : new Promise<void>((resolve) => out.once('drain', () => resolve())));
  const pages = client.imagePages(id);
  let first = true;
  if (format === 'csv') await write(imagesCsvHeader({ bom: opts.bom }));
  if (format === 'json') await write('[');
  for (;;) {
    const next = await callApi(where, () => pages.next());
    if (next.done) break;
    if (format === 'csv') await write(imagesCsvRows(next.value));
    else if (format === 'jsonl') await write(imagesJsonl(next.value));
    else {
      let text = '';
      for (const image of next.value) {
        text += `${first ? '\n' : ',\n'}  ${JSON.stringify(image)}`;
        first = false;
      }
      await write(text);
    }
  }
  if (format === 'json') await write(first ? ']\n' : '\n]\n');
}
