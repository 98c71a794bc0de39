import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { rootCertificates } from 'node:tls';
import { Agent } from 'undici';
import { ZipFile } from 'yazl';
import { CrawlerApiError, CrawlerClient, IMAGE_EXTENSIONS, type JobDocument } from '@depl/crawler/client';
import { requireInventory } from '../apply/inventory.js';
import type { DeplConfig } from '../config/schema.js';
import { OperationError, UserError, type ErrorCode } from '../errors.js';
import { registerSecret } from '../util/redact.js';
import { resolveSecrets, type SecretsSource } from '../apply/secrets-store.js';
import { secretNameAtPath } from '../plan/secrets.js';
import { tlsSettings } from '../plan/tls/certificates.js';

/**
 * `depl crawl`: where the crawler API is and how to talk to it. By default the live version through the
 * edge: http://<edge node address>/ with Host: <domain> (the edge is the first manager in the inventory),
 * so it works without DNS for the domain; https://<edge address>/ with the domain as TLS server name when
 * `tls:` is on. `--api URL` talks to any API directly. The bearer token never crosses a network in clear
 * text: plain http is refused for any address but loopback (and the local provider's nodes, which are on a
 * bridge of this machine) unless --insecure.
 */
export interface CrawlApiOptions {
  api?: string;
  env?: NodeJS.ProcessEnv;
  /** Allow the token over plain http to a non-loopback address. */
  insecure?: boolean;
  /** A PEM CA to trust for the API's certificate besides the system's (a private ACME CA, an institution's). */
  caCert?: string;
}

/**
 * What depl crawl reads of depl.yaml (cut by src/workflows/adapter-slices.ts crawlInputsFor): the domain, whether
 * the edge serves HTTPS and whether the nodes are local, depl.yaml's folder (the inventory names the edge), and
 * where the API token's value is (config.apiTokenFile names the secret).
 */
export interface CrawlInputs {
  config: Pick<DeplConfig, 'domain' | 'provider' | 'tls' | 'config'>;
  root: string;
  secrets: SecretsSource;
}

/** The crawler API's client: `inputs` is undefined only with --api when there is no depl.yaml. */
export async function crawlerClientFor(inputs: CrawlInputs | undefined, options: CrawlApiOptions): Promise<{ client: CrawlerClient; where: string }> {
  const env = options.env ?? process.env;
  const token = env.DEPL_API_TOKEN ?? (inputs ? await tokenFromSecrets(inputs, env) : undefined);
  registerSecret(token);
  if (options.api !== undefined) {
    let url: URL;
    try {
      url = new URL(options.api);
    } catch {
      throw new UserError(`--api "${options.api}" is not a URL`, 'Pass the API base URL, e.g. --api http://127.0.0.1:8000/', 'BAD_API_URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UserError(`--api must be http(s), not ${url.protocol}`, undefined, 'BAD_API_URL');
    refusePlainToken(url, token, options.insecure === true, false);
    const dispatcher = url.protocol === 'https:' && options.caCert ? new Agent({ connect: { ca: await caBundle(options.caCert) } }) : undefined;
    return { client: new CrawlerClient({ baseUrl: url.href, token, dispatcher }), where: url.href };
  }
  const inventory = await requireInventory(inputs!);
  const edge = inventory.nodes.find((n) => n.role === 'manager');
  if (edge === undefined) throw new OperationError('the inventory lists no manager (the edge node)', "Run 'depl node-up', or pass --api URL.", 'NO_MANAGER');
  const { config } = inputs!;
  const domain = config.domain;
  if (tlsSettings(config).mode !== 'off') {
    // by address, so no DNS is needed; the certificate is checked against the domain (SNI and name)
    const dispatcher = new Agent({ connect: { servername: domain, ...(options.caCert ? { ca: await caBundle(options.caCert) } : {}) } });
    return { client: new CrawlerClient({ baseUrl: `https://${edge.address}/`, hostHeader: domain, token, dispatcher }), where: `https://${domain}/ (edge ${edge.address})` };
  }
  refusePlainToken(new URL(`http://${edge.address}/`), token, options.insecure === true, config.provider.type === 'local');
  return { client: new CrawlerClient({ baseUrl: `http://${edge.address}/`, hostHeader: domain, token }), where: `http://${domain}/ (edge ${edge.address})` };
}

/** Is this host this machine (a loopback address or name)? */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1';
}

function refusePlainToken(url: URL, token: string | undefined, insecure: boolean, onThisMachine: boolean): void {
  if (token === undefined || url.protocol !== 'http:' || insecure || onThisMachine || isLoopbackHost(url.hostname)) return;
  throw new UserError(
    `refusing to send the API token over plain http to ${url.host}: anyone on the path could read it`,
    "Turn on tls: in depl.yaml (or pass an https:// --api), or pass --insecure if this network is yours.",
    'CRAWL_INSECURE',
  );
}

async function caBundle(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch((error: Error) => {
    throw new UserError(`cannot read --cacert ${file}: ${error.message}`, undefined, 'BAD_CACERT');
  });
  return [...rootCertificates, text];
}

/**
 * The token the deployed API reads: config.apiTokenFile points at /run/secrets/<name>, and that secret's value
 * is in the operator's secrets file (or DEPL_SECRET_<NAME>).
 */
async function tokenFromSecrets(inputs: CrawlInputs, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const file = inputs.config.config.apiTokenFile;
  const name = typeof file === 'string' ? secretNameAtPath(file) : null;
  if (name === null || !inputs.secrets.declared.includes(name)) return undefined;
  const [secret] = await resolveSecrets({ ...inputs.secrets, declared: [name] }, env);
  return secret?.value.reveal();
}

/**
 * The crawler API's own error codes (crawler/src/api, and the client's not_json) as depl's: a code this depl
 * does not know (a newer crawler's) is CRAWL_REJECTED for a 4xx answer, CRAWL_FAILED otherwise.
 */
const CRAWLER_API_CODES = new Map<string, ErrorCode>([
  ['body_too_large', 'CRAWL_BODY_TOO_LARGE'],
  ['internal_error', 'CRAWL_INTERNAL_ERROR'],
  ['invalid_query', 'CRAWL_INVALID_QUERY'],
  ['invalid_request', 'CRAWL_INVALID_REQUEST'],
  ['job_not_found', 'CRAWL_JOB_NOT_FOUND'],
  ['job_running', 'CRAWL_JOB_RUNNING'],
  ['malformed_json', 'CRAWL_MALFORMED_JSON'],
  ['method_not_allowed', 'CRAWL_METHOD_NOT_ALLOWED'],
  ['not_archived', 'CRAWL_NOT_ARCHIVED'],
  ['no_image_files', 'CRAWL_NO_IMAGE_FILES'],
  ['not_found', 'CRAWL_NOT_FOUND'],
  ['not_json', 'CRAWL_NOT_JSON'],
  ['redis_unavailable', 'CRAWL_REDIS_UNAVAILABLE'],
  ['too_many_failed_logins', 'CRAWL_TOO_MANY_FAILED_LOGINS'],
  ['unauthorized', 'CRAWL_UNAUTHORIZED'],
  ['unsupported_media_type', 'CRAWL_UNSUPPORTED_MEDIA_TYPE'],
]);

/** API errors as depl errors: the caller's mistakes exit 2, the service's trouble exits 1. */
export async function callApi<T>(where: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof CrawlerApiError) {
      const detail = [error.message, ...error.details].join('\n  ');
      if (error.status === 401) throw new UserError(`crawler API at ${where}: ${detail}`, 'The token is the secret config.apiTokenFile points at (see `depl secrets list`); a rotated one takes effect with the next buildinst. Or set DEPL_API_TOKEN.', 'CRAWL_UNAUTHORIZED');
      if (error.status >= 400 && error.status < 500) throw new UserError(`crawler API at ${where}: ${detail}`, undefined, CRAWLER_API_CODES.get(error.code) ?? 'CRAWL_REJECTED');
      throw new OperationError(`crawler API at ${where} failed: ${detail}`, undefined, CRAWLER_API_CODES.get(error.code) ?? 'CRAWL_FAILED');
    }
    const message = (error as Error).message || String(error);
    throw new OperationError(`cannot reach the crawler API at ${where}: ${message}`, 'Is the version live (depl status)? Or pass --api URL.', 'CRAWL_UNREACHABLE', { cause: error });
  }
}

/** Polls until the job leaves "running" or the deadline (epoch ms) passes; `onProgress` sees every document. */
export async function waitForCrawl(client: CrawlerClient, where: string, id: string, onProgress: (job: JobDocument) => void, intervalMs = 500, deadline?: number): Promise<JobDocument> {
  for (;;) {
    const job = await callApi(where, () => client.get(id));
    onProgress(job);
    if (job.status !== 'running') return job;
    if (deadline !== undefined && Date.now() >= deadline) return job;
    const wait = deadline === undefined ? intervalMs : Math.max(0, Math.min(intervalMs, deadline - Date.now()));
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

export function describeJob(job: JobDocument): string {
  const c = job.counts;
  return [
    `Job ${job.id}: ${job.status}`,
    `  pages: ${c.fetched} fetched, ${c.failed} failed, ${c.robots} skipped by robots.txt, ${c.blocked} blocked, ${c.pending} pending (of ${c.queued} queued)`,
    `  images: ${c.images}${c.dataImages ? ` (and ${c.dataImages} data: URIs, not listed)` : ''}`,
    ...(c.capped ? [`  ${c.capped} page(s) had more links or images than the per-page cap; their records say how many were left out`] : []),
    ...(job.maxPagesReached ? [`  maxPages (${job.request.maxPages}) was reached: further links were not followed`] : []),
    `  started ${job.createdAt}${job.finishedAt ? `, finished ${job.finishedAt}` : ''}`,
  ].join('\n');
}

/** One progress line for a TTY: a bar of pages done out of pages queued. */
export function progressLine(job: JobDocument, width = 30): string {
  const c = job.counts;
  const done = c.queued - c.pending;
  const filled = c.queued === 0 ? 0 : Math.round((done / c.queued) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] pages ${c.fetched}/${c.queued}  images ${c.images}`;
}

export interface DownloadProgress {
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
  /** Already in the folder with the right content (a resumed download). */
  kept: number;
}

/**
 * `depl crawl download`: every content a fetchImages job stored (filtered by type and size) into `dir`, one
 * file per content named by its SHA-256, each checked against its hash before it takes its name (a file that
 * is there with the right content is kept, so an interrupted download resumes), and images.jsonl listing each
 * file's type, size, URLs and pages.
 */
export async function downloadJobFiles(client: CrawlerClient, where: string, id: string, dir: string,
  filter: FileFilter, onProgress: (progress: DownloadProgress) => void): Promise<DownloadProgress> {
  const files = await filesToDownload(client, where, id, filter);
  await mkdir(dir, { recursive: true });
  const progress: DownloadProgress = { files: 0, totalFiles: files.length, bytes: 0, totalBytes: files.reduce((n, f) => n + f.bytes, 0), kept: 0 };
  onProgress(progress);
  const manifest: string[] = [];
  for (const file of files) {
    const name = `${file.sha256}.${IMAGE_EXTENSIONS[file.type] ?? 'bin'}`;
    const target = path.join(dir, name);
    if (await hasContent(target, file.sha256)) progress.kept++;
    else await downloadOne(client, where, id, file, target);
    progress.files++;
    progress.bytes += file.bytes;
    onProgress(progress);
    manifest.push(manifestLine(name, file));
  }
  await writeFile(path.join(dir, 'images.jsonl'), manifest.map((line) => `${line}\n`).join(''));
  return progress;
}

/** The filters of `depl crawl download` (GET /v1/jobs/:id/files' query). */
export type FileFilter = Parameters<CrawlerClient['allFiles']>[1];
type ListedFile = Awaited<ReturnType<CrawlerClient['allFiles']>>[number];

async function filesToDownload(client: CrawlerClient, where: string, id: string, filter: FileFilter): Promise<ListedFile[]> {
  const job = await callApi(where, () => client.get(id));
  if (!job.request.fetchImages) {
    throw new UserError(`job ${id} did not fetch images (it lists image URLs only)`, 'Submit the crawl again with image fetching on (fetchImages: true), then download it.', 'CRAWL_NO_IMAGE_FILES');
  }
  return callApi(where, () => client.allFiles(id, filter));
}

function manifestLine(name: string, file: ListedFile): string {
  return JSON.stringify({ file: name, sha256: file.sha256, type: file.type, bytes: file.bytes, width: file.width, height: file.height, urls: file.urls, pages: file.pages });
}

/**
 * `depl crawl download --zip`: the same files and images.jsonl in one zip (yazl), stored uncompressed (images
 * are compressed already). Resumable: the files are downloaded first into a folder beside the zip
 * (`<zip>.parts`), each as `downloadJobFiles` does (a file already there with its hash is kept, a cut one is
 * continued with an HTTP Range request), and the zip is written from them on this machine once all are
 * there and checked, then the folder removed. Ctrl-C or a dropped connection loses at most what was in flight.
 *
 * Why not Range over a zip the API builds: a zip made on request is not the same bytes from one request to
 * the next (entry order, timestamps, a job whose files changed), so resuming it needs a copy kept on the
 * server and a validator for it; each stored file is content-addressed, its SHA-256 a strong ETag and a
 * check of every piece on its own.
 */
export async function downloadJobZip(client: CrawlerClient, where: string, id: string, file: string,
  filter: FileFilter, onProgress: (progress: DownloadProgress) => void): Promise<DownloadProgress> {
  const files = await filesToDownload(client, where, id, filter);
  const parts = `${file}.parts`;
  await mkdir(parts, { recursive: true });
  const progress: DownloadProgress = { files: 0, totalFiles: files.length, bytes: 0, totalBytes: files.reduce((n, f) => n + f.bytes, 0), kept: 0 };
  onProgress(progress);
  const manifest: string[] = [];
  const names: string[] = [];
  for (const listed of files) {
    const name = `${listed.sha256}.${IMAGE_EXTENSIONS[listed.type] ?? 'bin'}`;
    const target = path.join(parts, name);
    if (await hasContent(target, listed.sha256)) progress.kept++;
    else await downloadOne(client, where, id, listed, target);
    progress.files++;
    progress.bytes += listed.bytes;
    onProgress(progress);
    manifest.push(manifestLine(name, listed));
    names.push(name);
  }
  const partial = `${file}.part`;
  const zip = new ZipFile();
  const written = pipeline(zip.outputStream, createWriteStream(partial));
  written.catch(() => undefined);
  try {
    for (const name of names) zip.addFile(path.join(parts, name), name, { compress: false });
    zip.addBuffer(Buffer.from(manifest.map((line) => `${line}\n`).join('')), 'images.jsonl');
    zip.end();
    await written;
    await rename(partial, file);
  } catch (error) {
    (zip.outputStream as Readable).destroy();
    await rm(partial, { force: true });
    throw error;
  }
  await rm(parts, { recursive: true, force: true });
  return progress;
}

async function hasContent(file: string, sha256: string): Promise<boolean> {
  try {
    return createHash('sha256').update(await readFile(file)).digest('hex') === sha256;
  } catch {
    return false;
  }
}

/**
 * One stored content into `target`, checked against its SHA-256 before it takes that name. The bytes arrive in
 * `<target>.part`, which a cut download leaves behind: the next run asks only for the rest (Range from its
 * size, If-Range on the content's ETag) and hashes what was there with what comes. A partial copy that turns
 * out wrong is removed, so the run after starts that file afresh.
 */
async function downloadOne(client: CrawlerClient, where: string, id: string, listed: { sha256: string; bytes: number }, target: string): Promise<void> {
  const { sha256 } = listed;
  const partial = `${target}.part`;
  let have = await sizeOf(partial);
  if (have >= listed.bytes) {
    await rm(partial, { force: true });
    have = 0;
  }
  const { body, start } = await callApi(where, () => client.fileStream(id, sha256, have));
  const hash = createHash('sha256');
  if (start > 0) for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
  // each chunk is written (and awaited) as it comes, so what arrived before a cut stays in the .part for the next run
  const out = await open(partial, start > 0 ? 'a' : 'w');
  try {
    for await (const chunk of body) {
      hash.update(chunk as Buffer);
      await out.write(chunk as Buffer);
    }
  } finally {
    await out.close();
  }
  const got = hash.digest('hex');
  if (got !== sha256) {
    await rm(partial, { force: true });
    throw new OperationError(`the crawler API sent content with SHA-256 ${got} for ${sha256} (job ${id})`, 'Run the download again; if it repeats, the image store on the cluster is damaged.', 'CRAWL_DOWNLOAD_CORRUPT');
  }
  await rename(partial, target);
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}
