import { looksSecret } from '../util/secret.js';
import { checkSecretName, checkServiceName } from '../names.js';

/**
 * Translates a Compose file (the format the seed crawler used, as fig) into depl's services and
 * accessories. Pure: the caller parses the YAML and hands the document in. Whatever has no depl meaning
 * is reported in `notTranslated` with the reason, never dropped silently; environment values that look
 * secret are reported in `secrets` and never copied into depl.yaml.
 *
 * Rules (Compose Specification, services section):
 * - a service with `build:` becomes a depl service; a second service with the same build becomes
 *   `from: <first>` (the worker that runs the web image with another command);
 * - an image-only service with a named volume becomes an accessory pinned to the manager with that volume
 *   (redis, postgres, ...); an image-only service without one becomes a depl service with `image:`;
 * - a published port makes the service reachable through the edge (`http: true`, `port:` = container port);
 * - an HTTP healthcheck (curl/wget of a URL) becomes `health:` with the URL's path; other healthchecks of
 *   accessories are kept as their health command.
 */

export interface DraftBuild { context: string; dockerfile: string; args?: Record<string, string> }

export interface DraftService {
  build?: DraftBuild;
  from?: string;
  image?: string;
  command?: string[];
  port?: number;
  replicas?: number;
  http?: boolean;
  health?: string;
  env?: Record<string, string>;
  secrets?: string[];
}

export interface DraftAccessory {
  image: string;
  command?: string[];
  volume?: string;
  node: 'manager';
  port?: number;
  env?: Record<string, string>;
  secrets?: string[];
  health?: { command: string[] };
}

export interface SecretFromEnv {
  /** The secret's name in depl (its file under /run/secrets). */
  name: string;
  /** The environment variable that held it in the Compose file. */
  env: string;
  service: string;
}

export interface ComposeImport {
  services: Record<string, DraftService>;
  accessories: Record<string, DraftAccessory>;
  secrets: SecretFromEnv[];
  /** `services.web.networks: ...why` lines, in file order. */
  notTranslated: string[];
}

export class ComposeError extends Error {}

type Dict = Record<string, unknown>;
const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Service keys that change nothing in a swarm deploy made by depl, with what depl does instead. */
const HANDLED_ELSEWHERE: Record<string, string> = {
  networks: 'depl puts every service and accessory on the app\'s one overlay network',
  depends_on: 'swarm starts services together; depl waits for every task and health check before a version counts as installed',
  restart: 'swarm restarts failed tasks itself',
  container_name: 'depl names services <app>-<version>-<service>',
  hostname: 'services reach each other by their service or accessory name',
  links: 'services reach each other by their service or accessory name',
  labels: 'depl labels services itself (depl.app, depl.version, depl.service)',
  logging: 'read logs with docker service logs on the manager',
  stop_signal: 'depl sends SIGTERM and waits the service\'s stopGracePeriod',
};

/** Keys translated below; anything else is listed as not translated. */
const TRANSLATED = new Set(['build', 'image', 'command', 'environment', 'ports', 'expose', 'healthcheck', 'deploy', 'volumes', 'stop_grace_period']);

export function translateCompose(doc: unknown): ComposeImport {
  if (!isDict(doc) || !isDict(doc.services) || Object.keys(doc.services).length === 0) {
    throw new ComposeError('has no "services:" mapping with at least one service');
  }
  const out: ComposeImport = { services: {}, accessories: {}, secrets: [], notTranslated: [] };
  const note = (where: string, why: string) => out.notTranslated.push(`${where}: ${why}`);
  for (const key of Object.keys(doc)) {
    if (['services', 'volumes', 'version', 'name'].includes(key)) continue;
    note(key, key === 'secrets' || key === 'configs'
      ? `name each as a depl secret (depl secrets set NAME) instead of a ${key === 'secrets' ? 'file' : 'config'} on this machine`
      : key === 'networks' ? 'depl makes one overlay network for the app' : 'has no depl equivalent');
  }

  const builders = new Map<string, string>(); // build identity -> depl service that builds it
  for (const [composeName, raw] of Object.entries(doc.services)) {
    const where = `services.${composeName}`;
    if (!isDict(raw)) {
      note(where, 'is not a mapping');
      continue;
    }
    const name = deplName(composeName);
    if (name === null) {
      note(where, `"${composeName}" cannot be made a depl service name (a DNS label of at most 20 characters)`);
      continue;
    }
    for (const key of Object.keys(raw)) {
      if (TRANSLATED.has(key)) continue;
      note(`${where}.${key}`, HANDLED_ELSEWHERE[key] ?? 'has no depl equivalent');
    }

    const command = toArgv(raw.command, `${where}.command`, note);
    const { env, secrets } = splitEnvironment(raw.environment, name, `${where}.environment`, note);
    out.secrets.push(...secrets);
    const port = containerPort(raw, where, note);
    const health = healthOf(raw.healthcheck, `${where}.healthcheck`);
    const replicas = replicasOf(raw.deploy, `${where}.deploy`, note);
    const secretNames = secrets.map((s) => s.name);

    const build = buildOf(raw.build, `${where}.build`, note);
    if (build !== undefined) {
      if (raw.image !== undefined) note(`${where}.image`, 'depl tags the images it builds itself (<app>/<service>:<version>)');
      volumesOf(raw.volumes, `${where}.volumes`, note, 'a versioned service keeps no data; move the data to an accessory');
      const identity = JSON.stringify(build);
      const builder = builders.get(identity);
      const service: DraftService = builder !== undefined ? { from: builder } : { build };
      if (builder === undefined) builders.set(identity, name);
      Object.assign(service, serviceFields({ command, port, replicas, env, secretNames, health: health?.path }));
      if (health?.command !== undefined) note(`${where}.healthcheck`, 'only HTTP checks (curl or wget of a URL) become a depl health path');
      out.services[name] = service;
      continue;
    }

    if (typeof raw.image !== 'string' || raw.image.length === 0) {
      note(where, 'has neither "build:" nor "image:"');
      continue;
    }
    const volume = volumesOf(raw.volumes, `${where}.volumes`, note, 'an accessory keeps one named volume');
    if (volume !== undefined) {
      const accessory: DraftAccessory = { image: raw.image, node: 'manager', volume };
      if (command) accessory.command = command;
      if (port !== undefined) accessory.port = port;
      if (Object.keys(env).length > 0) accessory.env = env;
      if (secretNames.length > 0) accessory.secrets = secretNames;
      if (health?.command) accessory.health = { command: health.command };
      if (health?.path) note(`${where}.healthcheck`, 'an accessory\'s health check runs as a command in its container; write one there');
      if (replicas !== undefined && replicas !== 1) note(`${where}.deploy.replicas`, 'an accessory runs one task, pinned with its volume');
      out.accessories[name] = accessory;
      continue;
    }
    out.services[name] = { image: raw.image, ...serviceFields({ command, port, replicas, env, secretNames, health: health?.path }) };
  }
  if (Object.keys(out.services).length === 0) {
    throw new ComposeError('has no service depl can deploy as a version (one with "build:", or an image without a volume)');
  }
  return out;
}

function serviceFields(f: { command?: string[]; port?: number; replicas?: number; env: Record<string, string>; secretNames: string[]; health?: string }): DraftService {
  const s: DraftService = {};
  if (f.command) s.command = f.command;
  if (f.port !== undefined) {
    s.port = f.port;
    s.http = true;
  }
  if (f.replicas !== undefined) s.replicas = f.replicas;
  if (f.health !== undefined && f.port !== undefined) s.health = f.health;
  if (Object.keys(f.env).length > 0) s.env = f.env;
  if (f.secretNames.length > 0) s.secrets = f.secretNames;
  return s;
}

/** `my_Web` -> `my-web`; null when no valid depl service name is left. */
export function deplName(composeName: string): string | null {
  const slug = composeName.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return checkServiceName(slug).ok ? slug : null;
}

type Note = (where: string, why: string) => void;

function buildOf(raw: unknown, where: string, note: Note): DraftBuild | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw === 'string') return { context: raw, dockerfile: joinPath(raw, 'Dockerfile') };
  if (!isDict(raw)) {
    note(where, 'expected a path or a mapping');
    return undefined;
  }
  const context = typeof raw.context === 'string' ? raw.context : '.';
  const build: DraftBuild = { context, dockerfile: joinPath(context, typeof raw.dockerfile === 'string' ? raw.dockerfile : 'Dockerfile') };
  const args = stringMap(raw.args, `${where}.args`, note);
  if (Object.keys(args).length > 0) build.args = args;
  for (const key of Object.keys(raw)) {
    if (!['context', 'dockerfile', 'args'].includes(key)) note(`${where}.${key}`, 'depl builds with context, dockerfile and args only');
  }
  return build;
}

/** depl's dockerfile path is relative to depl.yaml's folder; Compose's is relative to the context. */
function joinPath(context: string, file: string): string {
  if (file.startsWith('/')) return file;
  const base = context.replace(/\/+$/, '');
  return base === '' || base === '.' ? file : `${base}/${file}`;
}

function stringMap(raw: unknown, where: string, note: Note): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined || raw === null) return out;
  const entries: [string, unknown][] = Array.isArray(raw)
    ? raw.map((item) => {
      const text = String(item);
      const at = text.indexOf('=');
      return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
    })
    : isDict(raw) ? Object.entries(raw) : [];
  for (const [key, value] of entries) {
    if (value === undefined || value === null) {
      note(`${where}.${key}`, 'takes its value from the environment of the machine running compose; set it in depl.yaml');
      continue;
    }
    out[key] = String(value);
  }
  return out;
}

function splitEnvironment(raw: unknown, service: string, where: string, note: Note): { env: Record<string, string>; secrets: SecretFromEnv[] } {
  const env: Record<string, string> = {};
  const secrets: SecretFromEnv[] = [];
  const names: string[] = Array.isArray(raw) ? raw.map((item) => String(item).split('=')[0]!) : isDict(raw) ? Object.keys(raw) : [];
  const values = stringMap(raw, where, () => {});
  for (const key of names) {
    if (looksSecret(key)) {
      // The value goes to a swarm secret; the service is told where its file is, the `_FILE` convention
      // that the postgres, mysql and redis images (and many apps) read.
      const name = secretName(key);
      if (!checkSecretName(name).ok) {
        note(`${where}.${key}`, 'looks secret, but no depl secret name can be made from it; declare one under secrets: yourself');
        continue;
      }
      secrets.push({ name, env: key, service });
      env[`${key}_FILE`] = `/run/secrets/${name}`;
      continue;
    }
    const value = values[key];
    if (value === undefined) {
      note(`${where}.${key}`, 'takes its value from the environment of the machine running compose; set it in depl.yaml');
      continue;
    }
    if (/\$\{?[A-Za-z_]/.test(value)) note(`${where}.${key}`, `"${value}" is interpolated by compose from .env; depl uses the value as written`);
    env[key] = value;
  }
  return { env, secrets };
}

/** `POSTGRES_PASSWORD` -> `postgres_password`: the file name under /run/secrets. */
export function secretName(envKey: string): string {
  return envKey.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').replace(/^([^a-z])/, 's_$1').slice(0, 30);
}

function containerPort(raw: Dict, where: string, note: Note): number | undefined {
  const ports = Array.isArray(raw.ports) ? raw.ports : [];
  const targets: number[] = [];
  for (const entry of ports) {
    const target = portTarget(entry);
    if (target === undefined) note(`${where}.ports`, `"${isDict(entry) ? JSON.stringify(entry) : String(entry)}" is not a single TCP port`);
    else targets.push(target);
  }
  if (targets.length > 1) note(`${where}.ports`, `only one port per service is reached through the edge; kept ${targets[0]}, not ${targets.slice(1).join(', ')}`);
  if (targets.length > 0) return targets[0];
  // Ports only exposed to other services: nothing to publish, but an accessory still records its port.
  const exposed = Array.isArray(raw.expose) ? raw.expose.map((e) => portTarget(e)).filter((p): p is number => p !== undefined) : [];
  return exposed.length > 0 && raw.build === undefined ? exposed[0] : undefined;
}

/** Short syntax `[IP:][HOST:]CONTAINER[/tcp]` or long `{target, published, protocol}`. */
function portTarget(entry: unknown): number | undefined {
  if (isDict(entry)) {
    if (entry.protocol !== undefined && entry.protocol !== 'tcp') return undefined;
    return validPort(Number(entry.target));
  }
  const text = String(entry);
  const [spec, protocol] = text.split('/');
  if (protocol !== undefined && protocol !== 'tcp') return undefined;
  const container = spec!.split(':').pop()!;
  return /^\d+$/.test(container) ? validPort(Number(container)) : undefined;
}

const validPort = (n: number) => (Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined);

function replicasOf(raw: unknown, where: string, note: Note): number | undefined {
  if (!isDict(raw)) return undefined;
  for (const key of Object.keys(raw)) if (key !== 'replicas') note(`${where}.${key}`, 'depl sets placement, resources and update policy itself');
  const n = Number(raw.replicas);
  return raw.replicas !== undefined && Number.isInteger(n) && n >= 0 && n <= 100 ? n : undefined;
}

/** The first named volume as `name:/path`; bind mounts and further volumes are reported. */
function volumesOf(raw: unknown, where: string, note: Note, why: string): string | undefined {
  if (!Array.isArray(raw)) return undefined;
  let kept: string | undefined;
  for (const entry of raw) {
    const { source, target, type } = isDict(entry)
      ? { source: String(entry.source ?? ''), target: String(entry.target ?? ''), type: String(entry.type ?? 'volume') }
      : volumeShort(String(entry));
    const text = isDict(entry) ? `${source}:${target}` : String(entry);
    if (type !== 'volume' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(source) || !target.startsWith('/')) {
      note(where, `"${text}" is a bind mount or anonymous volume; depl mounts named volumes only`);
    } else if (kept !== undefined || why.startsWith('a versioned')) {
      note(where, `"${text}": ${why}`);
    } else {
      kept = `${source}:${target}`;
    }
  }
  return kept;
}

function volumeShort(text: string): { source: string; target: string; type: string } {
  const parts = text.split(':');
  if (parts.length === 1) return { source: '', target: parts[0]!, type: 'volume' };
  const source = parts[0]!;
  const bind = source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
  return { source, target: parts[1]!, type: bind ? 'bind' : 'volume' };
}

/**
 * `test: ["CMD", "curl", "-f", "http://localhost:8000/healthz"]` -> path `/healthz`. Other commands are kept
 * as a command (for accessories: `pg_isready`, `redis-cli ping`).
 */
function healthOf(raw: unknown, where: string): { path?: string; command?: string[] } | undefined {
  void where;
  if (!isDict(raw) || raw.disable === true) return undefined;
  const test = raw.test;
  let argv: string[];
  if (typeof test === 'string') argv = ['sh', '-c', test];
  else if (Array.isArray(test) && test.length > 0) {
    const [kind, ...rest] = test.map(String);
    if (kind === 'NONE') return undefined;
    argv = kind === 'CMD-SHELL' ? ['sh', '-c', rest.join(' ')] : kind === 'CMD' ? rest : [kind!, ...rest];
  } else return undefined;
  const text = argv.join(' ');
  const url = /\b(curl|wget)\b[^|;&]*?\bhttps?:\/\/[^/\s'"]+(\/[^\s'"|;&]*)?/.exec(text);
  if (url) return { path: url[2] ?? '/' };
  return { command: argv };
}

/** A Compose string command is split into words as a POSIX shell would, without expansions. */
function toArgv(raw: unknown, where: string, note: Note): string[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (Array.isArray(raw)) return raw.length > 0 ? raw.map(String) : undefined;
  if (typeof raw !== 'string') {
    note(where, 'expected a string or a list');
    return undefined;
  }
  const words = splitWords(raw);
  if (words === null) {
    note(where, 'has an unbalanced quote');
    return undefined;
  }
  return words.length > 0 ? words : undefined;
}

export function splitWords(text: string): string[] | null {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < text.length && '"\\$`'.includes(text[i + 1]!)) current += text[++i];
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      current += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (quote !== null) return null;
  if (inWord) words.push(current);
  return words;
}

/** `EXPOSE 8080/tcp 9090` in a Dockerfile -> 8080: the default port `depl init` offers for it. */
export function exposedPort(dockerfile: string): number | undefined {
  for (const line of dockerfile.split(/\r?\n/)) {
    const m = /^\s*EXPOSE\s+(\d+)(\/tcp)?\b/i.exec(line);
    if (m) return validPort(Number(m[1]));
  }
  return undefined;
}
