import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { request } from './undici-on-use.js';
import { z } from 'zod';
import { validateNetwork } from './core/address-policy.js';
import { PRODUCT_TOKEN, productToken } from './core/robots-directives.js';
import { ServiceSecret } from './core/secret.js';

/**
 * The one JSON document every crawler service is started with (`--config <URL>`, see seed 004). It is the
 * `config:` section of depl.yaml. DEPL_-prefixed environment variables override keys: DEPL_API_TOKEN sets
 * apiToken, DEPL_WORKER__CONCURRENCY sets worker.concurrency (double underscore = one level down).
 */
const network = z.string().superRefine((value, ctx) => {
  const problem = validateNetwork(value);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});

const robotsCacheSchema = z.strictObject({
  /** RFC 9309 2.4: a cached robots.txt is not used for more than 24 hours. */
  ttlSeconds: z.number().int().min(1).max(86_400).default(3600),
  /** Origins whose parsed rules one worker process keeps, and their approximate size in memory. */
  maxEntries: z.number().int().min(1).default(1000),
  maxBytes: z.number().int().min(1024).default(16 * 1024 * 1024),
  /** The same bounds for the copies shared in Redis (oldest evicted first). */
  sharedMaxEntries: z.number().int().min(1).default(10_000),
  sharedMaxBytes: z.number().int().min(1024).default(64 * 1024 * 1024),
});

const workerSchema = z.strictObject({
  /** Pages in flight per worker process. */
  concurrency: z.number().int().min(1).max(1024).default(32),
  /** A message held this long by a silent consumer (crashed, partitioned) is taken over by another. */
  visibilityTimeoutMs: z.number().int().min(200).default(30_000),
  fetchTimeoutMs: z.number().int().min(100).default(15_000),
  maxBodyBytes: z.number().int().min(1024).default(5 * 1024 * 1024),
  /**
   * Image bodies held at once by one worker process, in bytes (worker/byte-budget.ts): a download that would go over
   * waits before reading its body. Without it, `concurrency` images at a job's maxImageBytes each would be the bound.
   */
  imageBytesInFlight: z.number().int().min(1024).default(64 * 1024 * 1024),
  maxRedirects: z.number().int().min(0).max(20).default(5),
  maxAttempts: z.number().int().min(1).max(20).default(3),
  retryBaseMs: z.number().int().min(1).default(1000),
  /** Minimum gap between two requests to one host, across all workers (robots Crawl-delay can raise it). */
  hostDelayMs: z.number().int().min(0).default(0),
  /** Crawl-delay values above this are capped, so one host cannot park a job for hours. */
  maxHostDelayMs: z.number().int().min(0).default(10_000),
  /**
   * A host that answers 429 or 503 gets a gap of its own between requests, across all workers: at least
   * retryBaseMs and its Retry-After, doubled on every such answer up to this, shrunk by a fifth on every normal one.
   */
  maxHostBackoffMs: z.number().int().min(0).default(600_000),
  /**
   * Requests in flight to one host at once, across all workers (0: no cap). A task whose host is at the cap
   * waits in the delayed set, holding no fetch slot, until a request to that host ends.
   */
  hostConcurrency: z.number().int().min(0).max(1024).default(0),
  userAgent: z.string().min(1).default('depl-crawler/0.1 (+https://github.com/depl)'),
  /**
   * The product token robots.txt groups, X-Robots-Tag and robots metas name this crawler by (RFC 9309 2.2.1).
   * Unset: taken from userAgent (robotsNameOf).
   */
  robotsName: z.string().regex(PRODUCT_TOKEN, 'expected a robots.txt product token: letters, "-" and "_" only (RFC 9309 2.2.1), e.g. depl-crawler').optional(),
  /** On SIGTERM, in-flight pages get this long to finish; the rest are handed back. */
  shutdownGraceMs: z.number().int().min(0).default(10_000),
  /** robots.txt answers: kept this long, bounded in this process and in Redis (shared by all workers). */
  robotsCache: robotsCacheSchema.default(robotsCacheSchema.parse({})),
});

/** A secret given inline where only its file is accepted: refused with the key that takes the file. */
const inlineSecret = (fileKey: string) => z.never({ error: `a secret is not accepted inline: put it in a file (a swarm secret under /run/secrets) and name that file in ${fileKey}` }).optional();

/**
 * Keystone v3 for Nectar's Swift: an application credential (id and a secret file; Nectar's advice for a
 * service, bound to one project) or a user's password (a file) scoped to a project. The object store is the
 * token's catalog entry `object-store` of this interface (and region, when given).
 */
const keystoneSchema = z.strictObject({
  authUrl: z.string().regex(/^https?:\/\//, 'expected Keystone\'s http(s):// URL, e.g. https://keystone.rc.nectar.org.au:5000/v3'),
  applicationCredentialId: z.string().min(1).optional(),
  applicationCredentialSecretFile: z.string().min(1).optional(),
  applicationCredentialSecret: inlineSecret('applicationCredentialSecretFile'),
  username: z.string().min(1).optional(),
  userDomainName: z.string().min(1).default('Default'),
  passwordFile: z.string().min(1).optional(),
  password: inlineSecret('passwordFile'),
  projectId: z.string().min(1).optional(),
  projectName: z.string().min(1).optional(),
  projectDomainName: z.string().min(1).default('Default'),
  interface: z.enum(['public', 'internal', 'admin']).default('public'),
  region: z.string().min(1).optional(),
}).superRefine((keystone, ctx) => {
  const problem = (message: string) => ctx.addIssue({ code: 'custom', message });
  const credential = keystone.applicationCredentialId !== undefined || keystone.applicationCredentialSecretFile !== undefined;
  const password = keystone.username !== undefined || keystone.passwordFile !== undefined || keystone.projectId !== undefined || keystone.projectName !== undefined;
  if (credential && password) return problem('give an application credential (applicationCredentialId, applicationCredentialSecretFile) or a password login (username, passwordFile, projectId or projectName), not both');
  if (credential) {
    if (keystone.applicationCredentialId === undefined) problem('applicationCredentialSecretFile needs applicationCredentialId (the credential\'s id, from `openstack application credential create`)');
    if (keystone.applicationCredentialSecretFile === undefined) problem('applicationCredentialId needs applicationCredentialSecretFile (a file holding the credential\'s secret)');
    return;
  }
  if (!password) return problem('give applicationCredentialId and applicationCredentialSecretFile (preferred), or username, passwordFile and projectId or projectName');
  if (keystone.username === undefined) problem('a password login needs username');
  if (keystone.passwordFile === undefined) problem('a password login needs passwordFile (a file holding the password)');
  if ((keystone.projectId === undefined) === (keystone.projectName === undefined)) problem('a password login needs one of projectId or projectName (the project whose Swift holds the images)');
});

/**
 * The `swift` store's object store, reached with Swift's v1 auth (tempauth: authUrl, user and keyFile) or
 * Keystone v3 (`keystone`, as on Nectar). Secrets only from files (swarm secrets: /run/secrets/...), never
 * inline. Objects are named <job>/sha256/ab/<hash>.<ext> in the container.
 */
const swiftSchema = z.strictObject({
  authUrl: z.string().regex(/^https?:\/\//, 'expected an http(s):// URL (Swift\'s v1 auth, e.g. https://swift.example/auth/v1.0)').optional(),
  user: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  key: inlineSecret('keyFile'),
  keystone: keystoneSchema.optional(),
  container: z.string().regex(/^[^/]{1,256}$/, 'expected a container name (no "/", at most 256 characters)').default('crawler-images'),
  /** Each job may keep at most this many bytes in the container (counted in Redis, with the job's other keys). */
  maxJobBytes: z.number().int().min(1024).default(10 * 1024 ** 3),
  /**
   * Objects expire with their job (X-Delete-At: when the job's Redis record expires, set once the job ends).
   * One written while the job still runs gets a provisional expiry this long plus jobTtlSeconds after its write,
   * which bounds how long it outlives its job if no worker gets to set the exact one (killed at the job's end).
   */
  unfinishedJobSeconds: z.number().int().min(60).default(7 * 24 * 3600),
}).superRefine((swift, ctx) => {
  const tempauth = [swift.authUrl, swift.user, swift.keyFile].filter((value) => value !== undefined).length;
  if (swift.keystone !== undefined && tempauth > 0) ctx.addIssue({ code: 'custom', message: 'give either keystone (Keystone v3, as on Nectar) or authUrl, user and keyFile (Swift\'s tempauth), not both' });
  else if (swift.keystone === undefined && tempauth < 3) ctx.addIssue({ code: 'custom', message: 'give keystone (Keystone v3: authUrl and an application credential or password login) or all of authUrl, user and keyFile (Swift\'s tempauth)' });
});

const imagesSchema = z.strictObject({
  /**
   * Where fetched images are kept (image-store.ts): `redis`, the crawler's Redis, which every worker and API
   * replica on every node reaches (the default); `directory`, files under storePath, only where the workers and
   * the API share that directory (one machine, or a mount shared by every node); `swift`, an OpenStack Swift
   * container (images.swift), which every replica reaches over HTTP and which holds far more than Redis's memory.
   */
  store: z.enum(['redis', 'directory', 'swift']).default('redis'),
  swift: swiftSchema.optional(),
  /** The `redis` store keeps at most this many bytes of images per job (Redis holds them in memory). */
  redisMaxJobBytes: z.number().int().min(1024).default(256 * 1024 * 1024),
  /** The `directory` store's folder. */
  storePath: z.string().regex(/^\//, 'expected an absolute path').default('/data/images'),
  /** The largest image a job may ask to keep (its maxImageBytes); larger files are not read past this. */
  maxImageBytes: z.number().int().min(1024).default(50 * 1024 * 1024),
}).refine((images) => images.store !== 'swift' || images.swift !== undefined, { message: 'images.store is swift but images.swift (keystone, or tempauth\'s authUrl, user and keyFile) is missing', path: ['swift'] });

/** What answers without the bearer token. Writes (submit, cancel) always need it. */
const publicSchema = z.strictObject({
  /** GET /v1/jobs/:id and its pages and images: job ids are random UUIDs, so reading needs the id. */
  jobReads: z.boolean().default(true),
  /** GET /openapi.json: the API's description, nothing about its data. */
  openapi: z.boolean().default(true),
  /** GET /metrics: queue sizes and request counts; behind the token unless made public. */
  metrics: z.boolean().default(false),
});

const apiSchema = z.strictObject({
  maxBodyBytes: z.number().int().min(256).default(64 * 1024),
  maxPagesLimit: z.number().int().min(1).default(100_000),
  /** How long a Redis command may take before the API answers 503. */
  redisTimeoutMs: z.number().int().min(50).default(2000),
  public: publicSchema.default(publicSchema.parse({})),
  /** A client that sends this many wrong tokens within the window gets 429 until the window ends. */
  authFailures: z.strictObject({
    max: z.number().int().min(1).default(10),
    windowMs: z.number().int().min(1000).default(60_000),
  }).default({ max: 10, windowMs: 60_000 }),
  /**
   * Peers whose X-Forwarded-For is believed (the edge's nginx appends the client's address to it); the client
   * of any other peer is its own address. Default: private networks, where swarm's overlays live.
   */
  trustedProxies: z.array(network).default(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8', '::1/128', 'fc00::/7']),
});

export const serviceConfigSchema = z.object({
  redis: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL'),
  /** Where the Redis password is (a swarm secret: /run/secrets/redis_password); read at start. */
  redisPasswordFile: z.string().min(1).optional(),
  /** The API's bearer token, inline (tests, local runs) or, deployed, from apiTokenFile. Only the API needs it. */
  apiToken: z.string().min(1).transform((value) => new ServiceSecret(value)).optional(),
  apiTokenFile: z.string().min(1).optional(),
  /** A token that reads GET /metrics only (the autoscaler's), inline or from metricsTokenFile; absent: none. */
  metricsToken: z.string().min(1).transform((value) => new ServiceSecret(value)).optional(),
  metricsTokenFile: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).default(8000),
  host: z.string().default('0.0.0.0'),
  /** Prefix of every Redis key, so several apps (or test runs) can share one Redis. */
  keyPrefix: z.string().regex(/^[A-Za-z0-9:_-]*$/, 'expected letters, digits, ":", "_" or "-"').default('crawler:'),
  allow: z.strictObject({
    hosts: z.array(z.string().min(1)).default([]),
    networks: z.array(network).default([]),
  }).default({ hosts: [], networks: [] }),
  /** How long a finished (or cancelled) job's pages and images stay readable. */
  jobTtlSeconds: z.number().int().min(60).default(7 * 24 * 3600),
  worker: workerSchema.default(workerSchema.parse({})),
  images: imagesSchema.default(imagesSchema.parse({})),
  api: apiSchema.default(apiSchema.parse({})),
  // Keys of depl.yaml's config: section meant for other services are ignored rather than refused.
});

export type ServiceConfig = z.infer<typeof serviceConfigSchema> & {
  /** Read from redisPasswordFile at start; given to Redis with AUTH, never part of a URL that could be printed. */
  redisPassword?: ServiceSecret;
  /**
   * The `swift` image store's secret, read at start from its file: tempauth's keyFile, the application
   * credential's secret file or the password file.
   */
  swiftKey?: ServiceSecret;
};
export type WorkerConfig = ServiceConfig['worker'];

/** A config that could not be loaded: the message is the one line the service prints before exiting. */
export class ConfigLoadError extends Error {}

export interface LoadOptions {
  /** The API reads its token file; a worker, which has no token mounted, does not. */
  readToken?: boolean;
}

export async function loadServiceConfig(location: string | undefined, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Promise<ServiceConfig> {
  if (location === undefined || location === '') {
    // under depl the document is mounted anyway (DEPL_CONFIG_URL): only the flag that passes it is missing
    const mounted = env.DEPL_CONFIG_URL;
    throw new ConfigLoadError(mounted !== undefined && mounted !== ''
      ? `missing --config <URL>: depl mounted the config at ${mounted}, but this service is not started with it; set configArg: true on the service in depl.yaml`
      : 'missing --config <URL> (a file:// or http(s):// URL of the JSON service config)');
  }
  const shown = showUrl(location);
  let text: string;
  try {
    text = await fetchConfigText(location);
  } catch (error) {
    throw new ConfigLoadError(`cannot load config from ${shown}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigLoadError(`config at ${shown} is not valid JSON: ${(error as Error).message}`);
  }
  return readSecretFiles(parseServiceConfig(applyEnvOverrides(raw, env), shown), options);
}

/** The files the config points at (swarm secrets under /run/secrets), read once at start. */
export async function readSecretFiles(config: ServiceConfig, options: LoadOptions = {}): Promise<ServiceConfig> {
  const read = async (key: string, file: string) => {
    try {
      return new ServiceSecret((await readFile(file, 'utf8')).replace(/\r?\n$/, ''));
    } catch (error) {
      throw new ConfigLoadError(`cannot read ${file} (${key}): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}; is the secret mounted into this service?`);
    }
  };
  const out: ServiceConfig = { ...config };
  if (config.apiTokenFile !== undefined && options.readToken !== false) {
    if (config.apiToken !== undefined) throw new ConfigLoadError('config has both apiToken and apiTokenFile; keep one (apiTokenFile for a deployed service)');
    out.apiToken = await read('apiTokenFile', config.apiTokenFile);
  }
  if (config.metricsTokenFile !== undefined && options.readToken !== false) {
    if (config.metricsToken !== undefined) throw new ConfigLoadError('config has both metricsToken and metricsTokenFile; keep one (metricsTokenFile for a deployed service)');
    out.metricsToken = await read('metricsTokenFile', config.metricsTokenFile);
  }
  if (config.redisPasswordFile !== undefined) out.redisPassword = await read('redisPasswordFile', config.redisPasswordFile);
  const swift = config.images.swift;
  if (config.images.store === 'swift' && swift !== undefined) {
    const keystone = swift.keystone;
    const [key, file] = keystone === undefined ? ['images.swift.keyFile', swift.keyFile]
      : keystone.applicationCredentialSecretFile !== undefined ? ['images.swift.keystone.applicationCredentialSecretFile', keystone.applicationCredentialSecretFile]
        : ['images.swift.keystone.passwordFile', keystone.passwordFile];
    // the schema holds that the chosen login names its file
    out.swiftKey = await read(key, file!);
  }
  return out;
}

/** The product token this crawler answers to in robots.txt and opt-out headers: robotsName, else the user agent's. */
export function robotsNameOf(worker: Pick<ServiceConfig['worker'], 'userAgent' | 'robotsName'>): string {
  return (worker.robotsName ?? productToken(worker.userAgent)).toLowerCase();
}

export function parseServiceConfig(raw: unknown, source = 'config'): ServiceConfig {
  const result = serviceConfigSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ConfigLoadError(`config at ${source} is invalid: ${problems}`);
  }
  return result.data;
}

async function fetchConfigText(location: string): Promise<string> {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw new Error('not a URL (use file:///path/config.json or https://...)');
  }
  if (url.protocol === 'file:') return readFile(fileURLToPath(url), 'utf8');
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    const response = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000, signal: AbortSignal.timeout(15_000) });
    const body = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}`);
    return body;
  }
  throw new Error(`unsupported scheme ${url.protocol} (use file:// or http(s)://)`);
}

/** DEPL_WORKER__CONCURRENCY=8 -> {worker: {concurrency: 8}}; values are JSON when they parse as JSON. */
export function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const out = structuredClone(raw) as Record<string, unknown>;
  const known = new Set(Object.keys(serviceConfigSchema.shape));
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('DEPL_') || value === undefined) continue;
    const path = name.slice(5).split('__').map(camelCase);
    // DEPL_CONFIG and friends belong to the depl CLI, not to this document.
    if (!known.has(path[0]!)) continue;
    let target = out;
    for (const key of path.slice(0, -1)) {
      const next = target[key];
      target = typeof next === 'object' && next !== null && !Array.isArray(next) ? (next as Record<string, unknown>) : (target[key] = {});
    }
    target[path.at(-1)!] = parseEnvValue(value);
  }
  return out;
}

function camelCase(snake: string): string {
  return snake.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function parseEnvValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function showUrl(location: string): string {
  try {
    const url = new URL(location);
    if (url.password !== '') url.password = '***';
    return url.href;
  } catch {
    return JSON.stringify(location);
  }
}
