import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CrawlerClient } from '@depl/crawler/client';
import { OperationError } from '../errors.js';
import { callApi } from './crawl.js';

export interface ExportedArchive {
  file: string;
  bytes: number;
  sha256: string;
  records: number;
  pages: number;
}

/**
 * `depl crawl export JOB --format wacz`: the job's WACZ, as the crawler API writes it, into `file`. Written
 * under a temporary name and renamed once whole and of the announced size, so an interrupted export never
 * leaves a file that looks complete; its SHA-256 is reported, for citing the file.
 */
export async function exportJobArchive(client: CrawlerClient, where: string, id: string, file: string, onBytes: (bytes: number, total: number) => void): Promise<ExportedArchive> {
  const { body, bytes: announced, records, pages } = await callApi(where, () => client.waczStream(id));
  const partial = `${file}.part`;
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    await pipeline(body, new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        bytes += chunk.length;
        onBytes(bytes, announced);
        done(null, chunk);
      },
    }), createWriteStream(partial));
    if (announced > 0 && bytes !== announced) {
      throw new OperationError(`the crawler API announced ${announced} bytes of job ${id}'s WACZ and sent ${bytes}`, 'Run the export again.', 'CRAWL_DOWNLOAD_CORRUPT');
    }
    await rename(partial, file);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  return { file, bytes, sha256: hash.digest('hex'), records, pages };
}
