import path from 'node:path';
import type { CommandContext } from '../context.js';
import { crawlerClient } from '../crawl-client.js';
import { exportJobArchive } from '../../workflows/crawl-export.js';

export interface ExportOptions { format: 'wacz'; out?: string; api?: string; insecure?: boolean; cacert?: string }

/** Writes an archive job's WACZ (default ./crawl-<job>.wacz), with progress on stderr. */
export default async function command(ctx: CommandContext, id: string, opts: ExportOptions): Promise<void> {
  const { client, where } = await crawlerClient({ api: opts.api, configFile: ctx.globals.config, insecure: opts.insecure, caCert: opts.cacert });
  const file = path.resolve(opts.out ?? `crawl-${id.replace(/[^A-Za-z0-9-]/g, '').slice(0, 64)}.${opts.format}`);
  const tty = process.stderr.isTTY === true;
  const done = await exportJobArchive(client, where, id, file, (bytes, total) => {
    if (tty) process.stderr.write(`\r${mebibytes(bytes)}/${mebibytes(total)} MiB`);
  });
  if (tty) process.stderr.write('\n');
  ctx.result(done, `${done.file}: ${done.records} WARC records, ${done.pages} pages, ${mebibytes(done.bytes)} MiB, SHA-256 ${done.sha256}`);
}

const mebibytes = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
