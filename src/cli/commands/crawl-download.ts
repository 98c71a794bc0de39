import path from 'node:path';
import type { CommandContext } from '../context.js';
import { UserError } from '../../errors.js';
import { crawlerClient } from '../crawl-client.js';
import { downloadJobFiles, downloadJobZip, type DownloadProgress } from '../../workflows/crawl.js';

export interface DownloadOptions {
  dir?: string; zip?: string | boolean; type?: string; minBytes?: string; maxBytes?: string; minWidth?: string; minHeight?: string;
  api?: string; insecure?: boolean; cacert?: string;
}

/**
 * Downloads a fetchImages job's stored images into a folder (default ./crawl-<job>; a rerun keeps what is there
 * with the right hash) or, with --zip, into one zip (default ./crawl-<job>.zip), with progress on stderr; both resume
 * an interrupted run (crawl.ts: downloadJobZip).
 */
export default async function command(ctx: CommandContext, id: string, opts: DownloadOptions): Promise<void> {
  const { client, where } = await crawlerClient({ api: opts.api, configFile: ctx.globals.config, insecure: opts.insecure, caCert: opts.cacert });
  const name = `crawl-${id.replace(/[^A-Za-z0-9-]/g, '').slice(0, 64)}`;
  if (opts.zip !== undefined && opts.dir !== undefined) throw new UserError('--dir and --zip are two destinations; give one', 'Use --zip FILE for one archive, or --dir FOLDER for the files.', 'CRAWL_DOWNLOAD_DESTINATION');
  const filter = {
    type: opts.type?.split(',').map((t) => t.trim()).filter(Boolean), minBytes: count(opts.minBytes, '--min-bytes'), maxBytes: count(opts.maxBytes, '--max-bytes'),
    minWidth: count(opts.minWidth, '--min-width'), minHeight: count(opts.minHeight, '--min-height'),
  };
  const tty = process.stderr.isTTY === true;
  const show = (p: DownloadProgress) => {
    const line = `files ${p.files}/${p.totalFiles}  ${mebibytes(p.bytes)}/${mebibytes(p.totalBytes)} MiB${p.kept > 0 ? `  (${p.kept} already there)` : ''}`;
    if (tty) process.stderr.write(`\r${line}`);
    else if (p.files === p.totalFiles || p.files % 100 === 0) process.stderr.write(`${line}\n`);
  };
  if (opts.zip !== undefined) {
    const file = path.resolve(typeof opts.zip === 'string' ? opts.zip : `${name}.zip`);
    const done = await downloadJobZip(client, where, id, file, filter, show);
    if (tty) process.stderr.write('\n');
    ctx.result({ zip: file, ...done }, `${done.files} files (${mebibytes(done.totalBytes)} MiB) in ${file}, listed in its images.jsonl`);
    return;
  }
  const dir = path.resolve(opts.dir ?? name);
  const done = await downloadJobFiles(client, where, id, dir, filter, show);
  if (tty) process.stderr.write('\n');
  ctx.result({ dir, ...done }, `${done.files} files (${mebibytes(done.totalBytes)} MiB) in ${dir}, listed in images.jsonl`);
}

function count(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UserError(`${flag} ${value} is not a whole number`, `Give ${flag} as a number, e.g. ${flag} 100.`, 'CRAWL_BAD_FILTER');
  return Number(value);
}

const mebibytes = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
