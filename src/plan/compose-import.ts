import { looksSecret } from '../util/secret.js';
import { checkAppName, checkSecretName, checkServiceName } from '../names.js';
import { CONFIG_KEYS, SECRET_KEYS, SERVICE_KEY_REASONS, TRANSLATED_SERVICE_KEYS, VOLUME_KEYS } from './compose-keys.js';
import { projectSource } from './project-files.js';

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
 * - a service with a named volume AND a published port that is not a database's (gitea, nextcloud: a stateful
 *   web app) becomes a depl service with `volume:`: routed by the edge, one task pinned with its volume, taken
 *   over stop-first by each new version (see statefulWeb);
 * - a published port makes the service reachable through the edge (`http: true`, `port:` = container port);
 * - an HTTP healthcheck (curl/wget of a URL) becomes `health:` with the URL's path (else `/`); other checks
 *   become the container's healthcheck with compose's timing (an accessory's `health:`);
 * - top-level secrets become depl secrets (their `file:`/`environment:` values imported by depl init), mounted
 *   where compose mounted them; configs and read-only binds of project files become `files:` (swarm configs);
 * - user, working_dir, entrypoint, stop_signal, stop_grace_period, resources, env_file are carried over;
 *   depends_on between accessories is their start order.
 * Every other key is listed with its reason (src/plan/compose-keys.ts).
 */

export interface DraftBuild { context: string; dockerfile: string; args?: Record<string, string>; target?: string }

export interface DraftResources { limits?: { cpus?: number; memory?: string }; reservations?: { cpus?: number; memory?: string } }
export interface DraftHealthcheck { command: string[]; interval?: string; timeout?: string; retries?: number; startPeriod?: string }

/** What compose sets about the container itself, the same for services and accessories. */
export interface DraftContainer {
  command?: string[];
  entrypoint?: string[];
  user?: string;
  workdir?: string;
  stopSignal?: string;
  stopGracePeriod?: string;
  resources?: DraftResources;
  env?: Record<string, string>;
  secrets?: string[];
  secretPaths?: Record<string, string>;
  files?: Record<string, string>;
  /** The compose name, where it is not the depl name: other containers keep reaching it by it. */
  aliases?: string[];
}

export interface DraftService extends DraftContainer {
  build?: DraftBuild;
  from?: string;
  image?: string;
  /** A stateful web service's named volume (`name:/path`). */
  volume?: string;
  port?: number;
  replicas?: number;
  http?: boolean;
  health?: string;
  healthcheck?: DraftHealthcheck;
}

export interface DraftAccessory extends DraftContainer {
  image: string;
  volume?: string;
  node: 'manager';
  port?: number;
  health?: DraftHealthcheck;
  dependsOn?: string[];
}

export interface SecretFromEnv {
  /** The secret's name in depl (its file under /run/secrets). */
  name: string;
  /** The environment variable that held it in the Compose file. */
  env: string;
  service: string;
}

/** A compose top-level secret whose value depl init imports into .depl/secrets (never printed, never in depl.yaml). */
export interface SecretImport {
  /** Its name in depl. */
  name: string;
  /** Its name in the compose file. */
  composeName: string;
  /** A file (relative to the compose file's folder), or a variable of the environment depl init runs in. */
  from: { file: string } | { env: string };
}

export interface ComposeImport {
  /** The compose file's `name:` (the project name), as written. */
  name?: string;
  services: Record<string, DraftService>;
  accessories: Record<string, DraftAccessory>;
  secrets: SecretFromEnv[];
  /** Top-level secrets, declared in depl.yaml under their depl names, with where their values come from. */
  secretImports: SecretImport[];
  /** Top-level secrets with no value depl can import (external): declared, and given a generated value. */
  declaredSecrets: string[];
  /** HTTP services whose health path is `/` because compose had no HTTP healthcheck for them. */
  defaultHealth: string[];
  /** `services.web.networks: ...why` lines, in file order. */
  notTranslated: string[];
}

/** What depl init read for the translation: the env_file texts by path as written (absent: unreadable). */
export interface ComposeInputs {
  envFiles?: Record<string, string>;
}

export class ComposeError extends Error {}

type Dict = Record<string, unknown>;
const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);

const TRANSLATED = new Set<string>(TRANSLATED_SERVICE_KEYS);

/** The env_file paths a compose document names, for depl init to read before translating. */
export function envFilePaths(doc: unknown): string[] {
  if (!isDict(doc) || !isDict(doc.services)) return [];
  const paths: string[] = [];
  for (const raw of Object.values(doc.services)) {
    if (!isDict(raw)) continue;
    for (const entry of envFileEntries(raw.env_file)) if (!paths.includes(entry.path)) paths.push(entry.path);
  }
  return paths;
}

function envFileEntries(raw: unknown): { path: string; required: boolean }[] {
  const list = raw === undefined || raw === null ? [] : Array.isArray(raw) ? raw : [raw];
  return list.flatMap((item) => (typeof item === 'string' ? [{ path: item, required: true }]
    : isDict(item) && typeof item.path === 'string' ? [{ path: item.path, required: item.required !== false }] : []));
}

/**
 * The app's name: the compose file's `name:` if it makes one, else the folder's, made a valid app name (lower
 * case, "-" for anything else, at most 20 characters). Null when neither leaves a name.
 */
export function appNameFrom(composeName: string | undefined, folder: string): string | null {
  for (const candidate of [composeName, folder]) {
    if (candidate === undefined) continue;
    const slug = candidate.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+/, '').slice(0, 20).replace(/-+$/, '');
    if (checkAppName(slug).ok) return slug;
  }
  return null;
}

export function translateCompose(doc: unknown, inputs: ComposeInputs = {}): ComposeImport {
  if (!isDict(doc) || !isDict(doc.services) || Object.keys(doc.services).length === 0) {
    throw new ComposeError('has no "services:" mapping with at least one service');
  }
  const out: ComposeImport = { services: {}, accessories: {}, secrets: [], secretImports: [], declaredSecrets: [], defaultHealth: [], notTranslated: [] };
  if (typeof doc.name === 'string') out.name = doc.name;
  const note = (where: string, why: string) => out.notTranslated.push(`${where}: ${why}`);
  for (const key of Object.keys(doc)) {
    if (['services', 'volumes', 'version', 'name', 'secrets', 'configs'].includes(key)) continue;
    note(key, key === 'networks' ? 'depl makes one overlay network for the app' : 'has no depl equivalent');
  }
  const secretNames = topLevelSecrets(doc.secrets, out, note);
  const configFiles = topLevelConfigs(doc.configs, note);
  topLevelVolumes(doc.volumes, note);

  const builders = new Map<string, string>(); // build identity -> depl service that builds it
  const accessoryNames = new Map<string, string>(); // compose name -> depl name, for depends_on
  const pendingDepends: { name: string; raw: unknown; where: string }[] = [];
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
      note(`${where}.${key}`, SERVICE_KEY_REASONS[key] ?? 'is not a key of the Compose Specification depl knows');
    }
    for (const key of ['restart', 'networks', 'container_name', 'hostname', 'links'] as const) {
      if (raw[key] !== undefined) note(`${where}.${key}`, HANDLED_ELSEWHERE[key]);
    }

    const container = containerOf(raw, name, where, note, { secretNames, configFiles, envFiles: inputs.envFiles ?? {} }, out);
    if (composeName !== name && COMPOSE_ALIAS.test(composeName)) container.aliases = [composeName];
    const port = containerPort(raw, where, note);
    const health = healthOf(raw.healthcheck, `${where}.healthcheck`, note);
    const replicas = replicasOf(raw, where, note);

    const build = buildOf(raw.build, `${where}.build`, note);
    if (build === null) continue; // refused, with the reason noted
    const web = statefulWeb(raw, port);
    if (build !== undefined) {
      if (raw.image !== undefined) note(`${where}.image`, 'depl tags the images it builds itself (<app>/<service>:<version>)');
      const volume = volumesOf(raw.volumes, `${where}.volumes`, note, web ? STATEFUL_ONE_VOLUME : 'a versioned service keeps no data; move the data to an accessory', container);
      const identity = JSON.stringify(build);
      const builder = builders.get(identity);
      // a stateful service builds its own image: its takeover must not wait on another service's
      const service: DraftService = builder !== undefined && volume === undefined ? { from: builder } : { build };
      if (builder === undefined) builders.set(identity, name);
      out.services[name] = { ...service, ...serviceFields({ container, port, replicas, health }), ...statefulFields(volume, replicas, where, note) };
      if (port !== undefined && health?.path === undefined) out.defaultHealth.push(name);
      if (raw.depends_on !== undefined) note(`${where}.depends_on`, HANDLED_ELSEWHERE.depends_on);
      continue;
    }

    if (typeof raw.image !== 'string' || raw.image.length === 0) {
      note(where, 'has neither "build:" nor "image:"');
      continue;
    }
    const volume = volumesOf(raw.volumes, `${where}.volumes`, note, web ? STATEFUL_ONE_VOLUME : 'an accessory keeps one named volume', container);
    if (volume !== undefined && web) {
      out.services[name] = { image: raw.image, ...serviceFields({ container, port, replicas, health }), ...statefulFields(volume, replicas, where, note) };
      if (health?.path === undefined) out.defaultHealth.push(name);
      if (raw.depends_on !== undefined) note(`${where}.depends_on`, HANDLED_ELSEWHERE.depends_on);
      continue;
    }
    if (volume !== undefined) {
      if (Array.isArray(raw.ports) && raw.ports.length > 0) note(`${where}.ports`, `not published: depl keeps ${raw.image} an accessory (not an HTTP service), reached by its name on the app's network`);
      const accessory: DraftAccessory = { image: raw.image, node: 'manager', volume, ...container };
      if (port !== undefined) accessory.port = port;
      if (health !== undefined) accessory.health = health.check;
      if (replicas !== undefined && replicas !== 1) note(`${where}.deploy.replicas`, 'an accessory runs one task, pinned with its volume');
      out.accessories[name] = accessory;
      accessoryNames.set(composeName, name);
      pendingDepends.push({ name, raw: raw.depends_on, where: `${where}.depends_on` });
      continue;
    }
    out.services[name] = { image: raw.image, ...serviceFields({ container, port, replicas, health }) };
    if (port !== undefined && health?.path === undefined) out.defaultHealth.push(name);
    if (raw.depends_on !== undefined) note(`${where}.depends_on`, HANDLED_ELSEWHERE.depends_on);
  }
  // depends_on between accessories is their start order; on anything else, swarm starts them together
  for (const { name, raw, where } of pendingDepends) {
    const deps = dependsOnNames(raw);
    const kept = deps.flatMap((dep) => (accessoryNames.has(dep) ? [accessoryNames.get(dep)!] : []));
    const dropped = deps.filter((dep) => !accessoryNames.has(dep));
    if (kept.length > 0) out.accessories[name]!.dependsOn = kept;
    if (dropped.length > 0) note(where, `${dropped.join(', ')} ${dropped.length === 1 ? 'is not an accessory' : 'are not accessories'}: accessories start before every version's services anyway`);
    if (isDict(raw) && Object.values(raw).some((c) => isDict(c) && c.condition !== undefined && c.condition !== 'service_started')) {
      note(where, 'conditions: depl creates the accessories in this order and waits for every one to run (and pass its health check) before a version\'s services start');
    }
  }
  if (Object.keys(out.services).length === 0) {
    throw new ComposeError('has no service depl can deploy as a version (one with "build:", or an image without a volume)');
  }
  return out;
}

const STATEFUL_ONE_VOLUME = 'a stateful service keeps one named volume';

/** Images and ports of databases, caches and queues: published for a developer's client, never HTTP. */
const NOT_HTTP_IMAGES = new Set(['postgres', 'postgis', 'mysql', 'mariadb', 'redis', 'valkey', 'keydb', 'mongo', 'mongodb', 'memcached', 'rabbitmq', 'cassandra', 'mssql', 'oracle', 'influxdb', 'nats', 'zookeeper', 'kafka']);
const NOT_HTTP_PORTS = new Set([1433, 1521, 2181, 3306, 4222, 5432, 5672, 6379, 9042, 9092, 11211, 27017]);

/**
 * A stateful web app (gitea, nextcloud): a published port that is not a database's, with a named volume. It
 * becomes a service the edge routes, one task pinned with its volume (src/plan/install-plan.ts statefulTakeover);
 * a database with a published port stays an accessory.
 */
function statefulWeb(raw: Dict, port: number | undefined): boolean {
  if (port === undefined || !Array.isArray(raw.ports) || raw.ports.length === 0) return false;
  if (!Array.isArray(raw.volumes) || raw.volumes.length === 0) return false;
  const image = typeof raw.image === 'string' ? raw.image.split('@')[0]!.split('/').pop()!.split(':')[0]! : '';
  return !NOT_HTTP_IMAGES.has(image) && !NOT_HTTP_PORTS.has(port);
}

function statefulFields(volume: string | undefined, replicas: number | undefined, where: string, note: Note): Pick<DraftService, 'volume' | 'replicas'> {
  if (volume === undefined) return {};
  if (replicas === undefined || replicas === 1) return { volume };
  note(`${where}.deploy.replicas`, 'a service with a volume runs one task, pinned with its volume (its data files cannot be shared)');
  return { volume, replicas: 1 };
}

/** Service keys that depl does another way, with what it does instead. */
const HANDLED_ELSEWHERE = {
  networks: 'depl puts every service and accessory on the app\'s one overlay network',
  depends_on: 'swarm starts services together; depl waits for every task and health check before a version counts as installed',
  restart: 'swarm restarts failed tasks itself',
  container_name: 'depl names services <app>-<version>-<service>',
  hostname: 'services reach each other by their service or accessory name',
  links: 'services reach each other by their service or accessory name',
} as const;

function dependsOnNames(raw: unknown): string[] {
  if (Array.isArray(raw)) return raw.map(String);
  if (isDict(raw)) return Object.keys(raw);
  return [];
}

function serviceFields(f: { container: DraftContainer; port?: number; replicas?: number; health?: Health }): DraftService {
  const s: DraftService = { ...f.container };
  if (f.port !== undefined) {
    s.port = f.port;
    s.http = true;
    // the edge's gate: compose's HTTP check's path, else the service's root (rather than a /healthz it may not serve)
    s.health = f.health?.path ?? '/';
  }
  if (f.replicas !== undefined) s.replicas = f.replicas;
  if (f.health !== undefined && f.health.path === undefined) s.healthcheck = f.health.check;
  return s;
}

/** A compose name the networks can carry as an alias (Docker's host-name characters). */
const COMPOSE_ALIAS = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** `my_Web` -> `my-web`; null when no valid depl service name is left. */
export function deplName(composeName: string): string | null {
  const slug = composeName.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return checkServiceName(slug).ok ? slug : null;
}

type Note = (where: string, why: string) => void;

interface Declared {
  /** Compose secret name -> depl secret name. */
  secretNames: Map<string, string>;
  /** Compose config name -> the project file it holds. */
  configFiles: Map<string, string>;
  envFiles: Record<string, string>;
}

function topLevelSecrets(raw: unknown, out: ComposeImport, note: Note): Map<string, string> {
  const names = new Map<string, string>();
  if (!isDict(raw)) return names;
  for (const [composeName, entry] of Object.entries(raw)) {
    const where = `secrets.${composeName}`;
    const name = secretName(composeName);
    if (!checkSecretName(name).ok || !isDict(entry)) {
      note(where, isDict(entry) ? 'no depl secret name can be made from its name; declare one in depl.yaml yourself' : 'is not a mapping');
      continue;
    }
    for (const key of Object.keys(entry)) {
      const known = SECRET_KEYS[key];
      if (known === undefined) note(`${where}.${key}`, 'is not a key of the Compose Specification depl knows');
      else if (known !== true) note(`${where}.${key}`, known);
    }
    names.set(composeName, name);
    if (typeof entry.file === 'string') out.secretImports.push({ name, composeName, from: { file: entry.file } });
    else if (typeof entry.environment === 'string') out.secretImports.push({ name, composeName, from: { env: entry.environment } });
    else out.declaredSecrets.push(name);
  }
  return names;
}

function topLevelConfigs(raw: unknown, note: Note): Map<string, string> {
  const files = new Map<string, string>();
  if (!isDict(raw)) return files;
  for (const [composeName, entry] of Object.entries(raw)) {
    const where = `configs.${composeName}`;
    if (!isDict(entry)) {
      note(where, 'is not a mapping');
      continue;
    }
    for (const key of Object.keys(entry)) {
      const known = CONFIG_KEYS[key];
      if (known === undefined) note(`${where}.${key}`, 'is not a key of the Compose Specification depl knows');
      else if (known !== true) note(`${where}.${key}`, known);
    }
    if (typeof entry.file !== 'string') continue;
    const source = projectSource(entry.file);
    if (!source.ok) note(`${where}.file`, source.reason);
    else files.set(composeName, source.path);
  }
  return files;
}

function topLevelVolumes(raw: unknown, note: Note): void {
  if (!isDict(raw)) return;
  for (const [name, entry] of Object.entries(raw)) {
    if (!isDict(entry)) continue;
    for (const key of Object.keys(entry)) {
      const known = VOLUME_KEYS[key];
      if (known !== true) note(`volumes.${name}.${key}`, known ?? 'is not a key of the Compose Specification depl knows');
    }
  }
}

/** The keys that set up the container the same way for a service and an accessory. */
function containerOf(raw: Dict, name: string, where: string, note: Note, declared: Declared, out: ComposeImport): DraftContainer {
  const c: DraftContainer = {};
  const command = toArgv(raw.command, `${where}.command`, note);
  if (command) c.command = command;
  const entrypoint = toArgv(raw.entrypoint, `${where}.entrypoint`, note);
  if (entrypoint) c.entrypoint = entrypoint;
  if (typeof raw.user === 'string' || typeof raw.user === 'number') {
    const user = String(raw.user);
    if (/^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/.test(user)) c.user = user;
    else note(`${where}.user`, `"${user}" is not a user[:group] depl can pass on`);
  }
  if (typeof raw.working_dir === 'string') {
    if (raw.working_dir.startsWith('/')) c.workdir = raw.working_dir;
    else note(`${where}.working_dir`, 'is not an absolute path');
  }
  if (raw.stop_signal !== undefined) {
    const signal = String(raw.stop_signal).toUpperCase();
    const named = /^\d+$/.test(signal) || signal.startsWith('SIG') ? signal : `SIG${signal}`;
    if (/^(SIG[A-Z0-9+-]+|\d+)$/.test(named)) c.stopSignal = named;
    else note(`${where}.stop_signal`, `"${String(raw.stop_signal)}" is not a signal`);
  }
  if (raw.stop_grace_period !== undefined) {
    const grace = composeDuration(raw.stop_grace_period);
    if (grace !== null) c.stopGracePeriod = grace;
    else note(`${where}.stop_grace_period`, `"${String(raw.stop_grace_period)}" is not a duration`);
  }
  const resources = resourcesOf(raw, where, note);
  if (resources !== undefined) c.resources = resources;

  const fromFiles = envFromFiles(raw.env_file, declared.envFiles, `${where}.env_file`, note);
  const { env, secrets } = splitEnvironment(raw.environment, fromFiles, name, `${where}.environment`, note);
  out.secrets.push(...secrets);
  if (Object.keys(env).length > 0) c.env = env;
  const mounted = serviceSecrets(raw.secrets, declared.secretNames, `${where}.secrets`, note);
  const names = [...new Set([...secrets.map((s) => s.name), ...mounted.names])];
  if (names.length > 0) c.secrets = names;
  if (Object.keys(mounted.paths).length > 0) c.secretPaths = mounted.paths;
  const files = serviceConfigs(raw.configs, declared.configFiles, `${where}.configs`, note);
  if (Object.keys(files).length > 0) c.files = files;
  return c;
}

/** env_file entries in order (later files win), from the texts depl init read. */
function envFromFiles(raw: unknown, texts: Record<string, string>, where: string, note: Note): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of envFileEntries(raw)) {
    const text = texts[entry.path];
    if (text === undefined) {
      if (entry.required) note(where, `"${entry.path}" could not be read; its variables are not in depl.yaml`);
      continue;
    }
    Object.assign(env, parseEnvFile(text));
  }
  return env;
}

/** Compose's env file format: `KEY=value` lines, `#` comments, optional quotes, `export ` allowed. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    const quoted = /^(['"])(.*)\1$/.exec(value);
    if (quoted) value = quoted[2]!;
    else value = value.replace(/\s+#.*$/, '');
    env[m[1]!] = value;
  }
  return env;
}

/** A service's `secrets:` list: depl secret names, and where each is mounted when not /run/secrets/<depl name>. */
function serviceSecrets(raw: unknown, declared: Map<string, string>, where: string, note: Note): { names: string[]; paths: Record<string, string> } {
  const names: string[] = [];
  const paths: Record<string, string> = {};
  if (!Array.isArray(raw)) return { names, paths };
  for (const entry of raw) {
    const source = isDict(entry) ? String(entry.source ?? '') : String(entry);
    const name = declared.get(source);
    if (name === undefined) {
      note(where, `"${source}" is not a secret under the top-level secrets: (or could not be translated)`);
      continue;
    }
    const target = isDict(entry) && typeof entry.target === 'string' ? entry.target : source;
    if (isDict(entry)) for (const key of ['uid', 'gid', 'mode']) if (entry[key] !== undefined) note(`${where}.${source}.${key}`, 'depl mounts secrets owned by root, mode 0444 (readable by the image\'s user)');
    names.push(name);
    const file = target.startsWith('/run/secrets/') ? target.slice('/run/secrets/'.length) : target;
    if (file !== name) paths[name] = file;
  }
  return { names, paths };
}

/** A service's `configs:` list: the project file mounted at each target (`/<name>` unless given). */
function serviceConfigs(raw: unknown, declared: Map<string, string>, where: string, note: Note): Record<string, string> {
  const files: Record<string, string> = {};
  if (!Array.isArray(raw)) return files;
  for (const entry of raw) {
    const source = isDict(entry) ? String(entry.source ?? '') : String(entry);
    const file = declared.get(source);
    if (file === undefined) {
      note(where, `"${source}" is not a config with a file: in the project under the top-level configs:`);
      continue;
    }
    const target = isDict(entry) && typeof entry.target === 'string' ? entry.target : `/${source}`;
    if (!target.startsWith('/')) {
      note(where, `"${target}" is not an absolute path`);
      continue;
    }
    if (isDict(entry)) for (const key of ['uid', 'gid', 'mode']) if (entry[key] !== undefined) note(`${where}.${source}.${key}`, 'depl mounts configs owned by root, mode 0444');
    files[target] = file;
  }
  return files;
}

/** `1m30s`, `10s`, `500ms`, `1h` -> depl's `90s`, `10s`, `500ms`, `60m`; null when it is not a duration. */
export function composeDuration(raw: unknown): string | null {
  const text = String(raw).trim();
  if (!/^(\d+(\.\d+)?(h|m|s|ms|us|ns))+$/.test(text)) return null;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, ns: 0.000001 };
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)/g)) ms += Number(m[1]) * unit[m[2]!]!;
  ms = Math.round(ms);
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** `512M`, `1gb`, `1048576` -> depl's `512m`, `1g`, `1048576`; null when it is not a size. */
function composeSize(raw: unknown): string | null {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmg])?b?$/i.exec(String(raw).trim());
  return m ? `${m[1]}${(m[2] ?? '').toLowerCase()}` : null;
}

function amountOf(raw: unknown, where: string, note: Note): { cpus?: number; memory?: string } | undefined {
  if (!isDict(raw)) return undefined;
  const a: { cpus?: number; memory?: string } = {};
  for (const key of Object.keys(raw)) {
    if (key === 'cpus') {
      const n = Number(raw.cpus);
      if (n > 0) a.cpus = n;
      else note(`${where}.cpus`, `"${String(raw.cpus)}" is not a number of CPUs`);
    } else if (key === 'memory') {
      const size = composeSize(raw.memory);
      if (size !== null) a.memory = size;
      else note(`${where}.memory`, `"${String(raw.memory)}" is not a size`);
    } else {
      note(`${where}.${key}`, 'swarm limits and reserves cpus and memory only');
    }
  }
  return Object.keys(a).length > 0 ? a : undefined;
}

/** deploy.resources, and the service-level shorthands cpus, mem_limit, mem_reservation. */
function resourcesOf(raw: Dict, where: string, note: Note): DraftResources | undefined {
  const deploy = isDict(raw.deploy) ? raw.deploy : {};
  const res = isDict(deploy.resources) ? deploy.resources : {};
  const limits = amountOf(res.limits, `${where}.deploy.resources.limits`, note) ?? {};
  const reservations = amountOf(res.reservations, `${where}.deploy.resources.reservations`, note) ?? {};
  for (const key of Object.keys(res)) if (key !== 'limits' && key !== 'reservations') note(`${where}.deploy.resources.${key}`, 'swarm limits and reserves cpus and memory only');
  if (raw.cpus !== undefined && Number(raw.cpus) > 0) limits.cpus ??= Number(raw.cpus);
  if (raw.mem_limit !== undefined) {
    const size = composeSize(raw.mem_limit);
    if (size !== null) limits.memory ??= size;
  }
  if (raw.mem_reservation !== undefined) {
    const size = composeSize(raw.mem_reservation);
    if (size !== null) reservations.memory ??= size;
  }
  const out: DraftResources = {};
  if (Object.keys(limits).length > 0) out.limits = limits;
  if (Object.keys(reservations).length > 0) out.reservations = reservations;
  return Object.keys(out).length > 0 ? out : undefined;
}


/** null: refused (a context outside the project, or a remote one), with the reason noted. */
function buildOf(raw: unknown, where: string, note: Note): DraftBuild | undefined | null {
  if (raw === undefined) return undefined;
  const spec: Dict = typeof raw === 'string' ? { context: raw } : isDict(raw) ? raw : {};
  if (typeof raw !== 'string' && !isDict(raw)) {
    note(where, 'expected a path or a mapping');
    return null;
  }
  const written = typeof spec.context === 'string' ? spec.context : '.';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(written) || written.startsWith('git@')) {
    note(`${where}.context`, `"${written}" is a remote context; depl builds from folders in the project (clone it into the project first). The service is not deployed`);
    return null;
  }
  const source = projectSource(written);
  if (!source.ok) {
    note(`${where}.context`, `${source.reason}. The service is not deployed`);
    return null;
  }
  const context = source.path;
  const dockerfile = typeof spec.dockerfile === 'string' ? spec.dockerfile : 'Dockerfile';
  const build: DraftBuild = { context, dockerfile: joinPath(context, dockerfile) };
  const args = stringMap(spec.args, `${where}.args`, note);
  if (Object.keys(args).length > 0) build.args = args;
  if (typeof spec.target === 'string') build.target = spec.target;
  for (const key of Object.keys(spec)) {
    if (!['context', 'dockerfile', 'args', 'target'].includes(key)) note(`${where}.${key}`, 'depl builds with context, dockerfile, args and target only');
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

function splitEnvironment(raw: unknown, fromFiles: Record<string, string>, service: string, where: string, note: Note): { env: Record<string, string>; secrets: SecretFromEnv[] } {
  const env: Record<string, string> = {};
  const secrets: SecretFromEnv[] = [];
  const inline: string[] = Array.isArray(raw) ? raw.map((item) => String(item).split('=')[0]!) : isDict(raw) ? Object.keys(raw) : [];
  const values = { ...fromFiles, ...stringMap(raw, where, () => {}) };
  const names = [...new Set([...Object.keys(fromFiles), ...inline])];
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

/** deploy.replicas, else the service-level `scale:`; the rest of deploy: noted (resources are read by resourcesOf). */
function replicasOf(raw: Dict, where: string, note: Note): number | undefined {
  const deploy = raw.deploy;
  const valid = (v: unknown) => {
    const n = Number(v);
    return v !== undefined && Number.isInteger(n) && n >= 0 && n <= 100 ? n : undefined;
  };
  if (isDict(deploy)) {
    for (const key of Object.keys(deploy)) {
      if (key === 'replicas' || key === 'resources') continue;
      note(`${where}.deploy.${key}`, DEPLOY_REASONS[key] ?? 'is not a key of the Compose Specification depl knows');
    }
    const n = valid(deploy.replicas);
    if (n !== undefined) return n;
  }
  return valid(raw.scale);
}

const DEPLOY_REASONS: Record<string, string> = {
  mode: 'depl runs replicated services (global is not offered)',
  endpoint_mode: 'depl uses dnsrr everywhere (the nodes may lack IPVS for VIPs)',
  labels: 'depl labels services itself',
  placement: 'depl places versioned services anywhere and pins accessories and stateful services to their volume\'s node',
  restart_policy: 'depl restarts failed tasks after 3s, always',
  rollback_config: 'depl rolls back by switching versions (depl rollback)',
  update_config: 'depl installs each version as new services and switches the edge; accessories update stop-first',
};

/** Named volumes as `name:/path` (the first kept for an accessory); read-only binds inside the project become files. */
function volumesOf(raw: unknown, where: string, note: Note, why: string, container: DraftContainer): string | undefined {
  if (!Array.isArray(raw)) return undefined;
  let kept: string | undefined;
  for (const entry of raw) {
    const parsed = isDict(entry)
      ? { source: String(entry.source ?? ''), target: String(entry.target ?? ''), type: String(entry.type ?? 'volume'), readOnly: entry.read_only === true }
      : volumeShort(String(entry));
    const text = isDict(entry) ? `${parsed.source}:${parsed.target}` : String(entry);
    if (parsed.type === 'bind') {
      bindOf(parsed, text, where, note, container);
    } else if (parsed.type !== 'volume' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(parsed.source) || !parsed.target.startsWith('/')) {
      note(where, `"${text}" is an anonymous volume or a ${parsed.type} mount; depl mounts named volumes only`);
    } else if (kept !== undefined || why.startsWith('a versioned')) {
      note(where, `"${text}": ${why}`);
    } else {
      kept = `${parsed.source}:${parsed.target}`;
    }
  }
  return kept;
}

function bindOf(bind: { source: string; target: string; readOnly: boolean }, text: string, where: string, note: Note, container: DraftContainer): void {
  const source = projectSource(bind.source);
  if (!source.ok) {
    note(where, `"${text}" is refused: ${source.reason}`);
    return;
  }
  if (!bind.readOnly) {
    note(where, `"${text}" is a writable bind: its writes would stay on one node, which the others do not share; use a named volume, or add :ro to mount the project's files read-only`);
    return;
  }
  if (!bind.target.startsWith('/')) {
    note(where, `"${text}": the target is not an absolute path`);
    return;
  }
  container.files = { ...container.files, [bind.target]: source.path };
}

function volumeShort(text: string): { source: string; target: string; type: string; readOnly: boolean } {
  const parts = text.split(':');
  if (parts.length === 1) return { source: '', target: parts[0]!, type: 'volume', readOnly: false };
  const source = parts[0]!;
  const bind = source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
  const readOnly = (parts[2] ?? '').split(',').includes('ro');
  return { source, target: parts[1]!, type: bind ? 'bind' : 'volume', readOnly };
}

interface Health {
  /** An HTTP check's path (curl or wget of a URL): the edge's gate for an http service. */
  path?: string;
  /** The check as compose runs it in the container, with its timing. */
  check: DraftHealthcheck;
}

/**
 * `test: ["CMD", "curl", "-f", "http://localhost:8000/healthz"]` -> path `/healthz`; any check is also kept as
 * a command with compose's timing (interval, timeout, retries, start_period).
 */
function healthOf(raw: unknown, where: string, note: Note): Health | undefined {
  if (!isDict(raw) || raw.disable === true) return undefined;
  const test = raw.test;
  let argv: string[];
  if (typeof test === 'string') argv = ['sh', '-c', test];
  else if (Array.isArray(test) && test.length > 0) {
    const [kind, ...rest] = test.map(String);
    if (kind === 'NONE') return undefined;
    argv = kind === 'CMD-SHELL' ? ['sh', '-c', rest.join(' ')] : kind === 'CMD' ? rest : [kind!, ...rest];
  } else return undefined;
  const check: DraftHealthcheck = { command: argv };
  for (const [key, field] of [['interval', 'interval'], ['timeout', 'timeout'], ['start_period', 'startPeriod']] as const) {
    if (raw[key] === undefined) continue;
    const d = composeDuration(raw[key]);
    if (d !== null) check[field] = d;
    else note(`${where}.${key}`, `"${String(raw[key])}" is not a duration`);
  }
  if (raw.retries !== undefined && Number.isInteger(Number(raw.retries)) && Number(raw.retries) >= 1) check.retries = Math.min(100, Number(raw.retries));
  if (raw.start_interval !== undefined) note(`${where}.start_interval`, 'swarm services check at one interval');
  const text = argv.join(' ');
  const url = /\b(curl|wget)\b[^|;&]*?\bhttps?:\/\/[^/\s'"]+(\/[^\s'"|;&]*)?/.exec(text);
  return url ? { path: url[2] ?? '/', check } : { check };
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
