import path from 'node:path';
import type { CommandContext } from '../context.js';
import { UserError } from '../../errors.js';
import { crawlerClientFor, downloadJobFiles, type DownloadProgress } from '../../workflows/crawl.js';

export interface DownloadOptions { dir?: string; type?: string; minBytes?: string; maxBytes?: string; api?: string; insecure?: boolean; cacert?: string }

/** Downloads a fetchImages job's stored images into a folder (default ./crawl-<job>), with progress on stderr. */
export default async function command(ctx: CommandContext, id: string, opts: DownloadOptions): Promise<void> {
  const { client, where } = await crawlerClientFor({ api: opts.api, configFile: ctx.globals.config, insecure: opts.insecure, caCert: opts.cacert });
  const dir = path.resolve(opts.dir ?? `crawl-${id.replace(/[^A-Za-z0-9-]/g, '').slice(0, 64)}`);
  const filter = { type: opts.type?.split(',').map((t) => t.trim()).filter(Boolean), minBytes: count(opts.minBytes, '--min-bytes'), maxBytes: count(opts.maxBytes, '--max-bytes') };
  const tty = process.stderr.isTTY === true;
  const show = (p: DownloadProgress) => {
    const line = `files ${p.files}/${p.totalFiles}  ${mebibytes(p.bytes)}/${mebibytes(p.totalBytes)} MiB${p.kept > 0 ? `  (${p.kept} already there)` : ''}`;
    if (tty) process.stderr.write(`\r${line}`);
    else if (p.files === p.totalFiles || p.files % 100 === 0) process.stderr.write(`${line}\n`);
  };
  const done = await downloadJobFiles(client, where, id, dir, filter, show);
  if (tty) process.stderr.write('\n');
  ctx.result({ dir, ...done }, `${done.files} files (${mebibytes(done.totalBytes)} MiB) in ${dir}, listed in images.jsonl`);
}

function count(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UserError(`${flag} ${value} is not a whole number of bytes`, `Give ${flag} as a number, e.g. ${flag} 10000.`, 'CRAWL_BAD_FILTER');
  return Number(value);
}

const mebibytes = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
