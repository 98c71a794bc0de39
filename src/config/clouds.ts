import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { UserError } from '../errors.js';
import { registerSecret } from '../util/redact.js';

/**
 * OpenStack credentials the way users already keep them: a clouds.yaml (with secure.yaml beside it) found
 * on the standard search path, or the OS_* variables of an "openrc" file. Nothing here talks to the network.
 */

export type OpenStackAuth = PasswordAuth | ApplicationCredentialAuth;

export interface PasswordAuth {
  type: 'password';
  username?: string;
  userId?: string;
  userDomainName?: string;
  userDomainId?: string;
  password: string;
  projectId?: string;
  projectName?: string;
  projectDomainName?: string;
  projectDomainId?: string;
}

export interface ApplicationCredentialAuth {
  type: 'application_credential';
  id?: string;
  /** By name, the credential's owner must be named too (username + user domain, or user id). */
  name?: string;
  username?: string;
  userId?: string;
  userDomainName?: string;
  userDomainId?: string;
  secret: string;
}

export interface CloudCredentials {
  authUrl: string;
  regionName?: string;
  /** Endpoint interface to pick from the catalog: public unless the cloud says otherwise. */
  interface: string;
  auth: OpenStackAuth;
  /** A CA bundle (PEM) to trust besides the system's: clouds.yaml `cacert`, OS_CACERT. */
  caCertFile?: string;
  /** Skip TLS verification (clouds.yaml `verify: false`, OS_INSECURE=true): for test clouds only. */
  insecure?: boolean;
  /** Where these came from, for messages: `cloud "nectar" in /home/me/clouds.yaml` or `OS_* environment`. */
  source: string;
}

export interface ResolveCloudOptions {
  /** provider.cloud from depl.yaml; OS_CLOUD when absent. */
  cloud?: string;
  /** provider.region from depl.yaml; wins over OS_REGION_NAME and the cloud's region_name. */
  region?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  home?: string;
  /** Folder of depl.yaml, searched for clouds.yaml right after the working directory. */
  configRoot?: string;
  /** May we ask for a missing password? (a TTY and no --yes) */
  interactive: boolean;
  /** Masked prompt; the default uses @inquirer/prompts. */
  askPassword?: (message: string) => Promise<string>;
}

const CONFIG_SUFFIXES = ['.yaml', '.yml', '.json'];

/**
 * The folders openstacksdk searches, in its order: the working directory, ~/.config/openstack,
 * /etc/openstack. depl also looks beside depl.yaml, right after the working directory.
 */
function searchFolders(options: Pick<ResolveCloudOptions, 'cwd' | 'home' | 'configRoot'>): string[] {
  const cwd = options.cwd ?? process.cwd();
  const home = options.home ?? os.homedir();
  const folders = [cwd];
  if (options.configRoot && path.resolve(options.configRoot) !== path.resolve(cwd)) folders.push(options.configRoot);
  folders.push(path.join(home, '.config', 'openstack'), '/etc/openstack');
  return folders;
}

/** Where clouds.yaml may be, first match wins: OS_CLIENT_CONFIG_FILE, then clouds.{yaml,yml,json} in each folder. */
export function cloudsYamlCandidates(options: Pick<ResolveCloudOptions, 'env' | 'cwd' | 'home' | 'configRoot'>): string[] {
  const env = options.env ?? process.env;
  const list = searchFolders(options).flatMap((folder) => CONFIG_SUFFIXES.map((suffix) => path.join(folder, `clouds${suffix}`)));
  if (env.OS_CLIENT_CONFIG_FILE) list.unshift(path.resolve(options.cwd ?? process.cwd(), env.OS_CLIENT_CONFIG_FILE));
  return list;
}

/** Where secure.yaml (the secrets half) may be: OS_CLIENT_SECURE_FILE, then secure.{yaml,yml,json} on the same path. */
export function secureYamlCandidates(options: Pick<ResolveCloudOptions, 'env' | 'cwd' | 'home' | 'configRoot'>): string[] {
  const env = options.env ?? process.env;
  const list = searchFolders(options).flatMap((folder) => CONFIG_SUFFIXES.map((suffix) => path.join(folder, `secure${suffix}`)));
  if (env.OS_CLIENT_SECURE_FILE) list.unshift(path.resolve(options.cwd ?? process.cwd(), env.OS_CLIENT_SECURE_FILE));
  return list;
}

export async function resolveCloudCredentials(options: ResolveCloudOptions): Promise<CloudCredentials> {
  const env = options.env ?? process.env;
  const cloudName = options.cloud ?? (env.OS_CLOUD || undefined);
  const candidates = cloudsYamlCandidates(options);
  const found = await firstReadable(candidates);

  let settings: RawCloud;
  let source: string;
  if (cloudName !== undefined) {
    if (!found) {
      throw new UserError(
        `cloud "${cloudName}" is selected but no clouds.yaml was found (looked at ${candidates.join(', ')})`,
        'Download clouds.yaml from the dashboard (Project > API Access) into this folder or ~/.config/openstack/, or set OS_CLIENT_CONFIG_FILE.',
        'CLOUDS_YAML_MISSING',
      );
    }
    const clouds = await readClouds(found);
    const cloud = clouds[cloudName];
    if (cloud === undefined) {
      const names = Object.keys(clouds);
      throw new UserError(
        `${found} has no cloud named "${cloudName}" (it has: ${names.length > 0 ? names.join(', ') : 'none'})`,
        'Set provider.cloud in depl.yaml (or OS_CLOUD) to one of those names.',
        'CLOUD_NOT_FOUND',
      );
    }
    const secureFile = await firstReadable(secureYamlCandidates(options));
    const secure = secureFile ? await readClouds(secureFile) : {};
    settings = withRegion(deepMerge(cloud, secure[cloudName] ?? {}), options.region ?? (env.OS_REGION_NAME || undefined), cloudName, found);
    source = `cloud "${cloudName}" in ${found}`;
    // The openstack CLI lets these variables override a named cloud; users rely on OS_PASSWORD in particular.
    settings.auth = { ...settings.auth };
    if (env.OS_PASSWORD && settings.auth.password === undefined) settings.auth.password = env.OS_PASSWORD;
  } else if (env.OS_AUTH_URL) {
    settings = settingsFromEnv(env);
    source = 'the OS_* environment variables';
  } else if (found) {
    const clouds = await readClouds(found);
    const names = Object.keys(clouds);
    if (names.length !== 1) {
      throw new UserError(
        `no cloud selected and ${found} has ${names.length === 0 ? 'no clouds' : `several (${names.join(', ')})`}`,
        'Set provider.cloud in depl.yaml or OS_CLOUD to the cloud to use.',
        'CLOUD_NOT_SELECTED',
      );
    }
    return resolveCloudCredentials({ ...options, cloud: names[0]! });
  } else {
    throw new UserError(
      'no OpenStack credentials: no cloud selected, no OS_AUTH_URL and no clouds.yaml',
      'Download clouds.yaml (dashboard: Project > API Access) and set provider.cloud, or source your openrc file.',
      'CLOUD_CREDENTIALS_MISSING',
    );
  }

  const fromEnv = cloudName === undefined;
  const auth = await authFrom(settings, fromEnv, options, source);
  const authUrl = str(settings.auth.auth_url);
  if (!authUrl) throw missing(fromEnv ? 'OS_AUTH_URL' : 'auth.auth_url', source);
  if (!/^https?:\/\//.test(authUrl)) throw new UserError(`auth URL "${authUrl}" (${source}) is not an http(s) URL`, undefined, 'CLOUD_CONFIG_INVALID');
  return {
    authUrl,
    regionName: options.region ?? str(settings.region_name),
    interface: (str(settings.interface) ?? 'public').replace(/URL$/, ''),
    auth,
    ...(str(env.OS_CACERT) ?? str(settings.cacert) ? { caCertFile: str(env.OS_CACERT) ?? str(settings.cacert) } : {}),
    ...(settings.verify === false || /^(1|true|yes)$/i.test(env.OS_INSECURE ?? '') ? { insecure: true } : {}),
    source,
  };
}

interface RawCloud {
  auth: Record<string, unknown>;
  auth_type?: unknown;
  region_name?: unknown;
  interface?: unknown;
  [key: string]: unknown;
}

async function authFrom(settings: RawCloud, fromEnv: boolean, options: ResolveCloudOptions, where: string): Promise<OpenStackAuth> {
  const a = settings.auth;
  const type = str(settings.auth_type) ?? (a.application_credential_id || a.application_credential_secret ? 'v3applicationcredential' : 'password');
  const name = (key: string, envName: string) => (fromEnv ? envName : `auth.${key}`);
  const user = {
    username: str(a.username),
    userId: str(a.user_id),
    userDomainName: str(a.user_domain_name) ?? str(a.domain_name),
    userDomainId: str(a.user_domain_id) ?? str(a.domain_id),
  };

  if (type === 'v3applicationcredential' || type === 'applicationcredential' || type === 'application_credential') {
    const secret = str(a.application_credential_secret);
    if (!secret) throw missing(name('application_credential_secret', 'OS_APPLICATION_CREDENTIAL_SECRET'), where);
    registerSecret(secret);
    const id = str(a.application_credential_id);
    const credName = str(a.application_credential_name);
    if (!id && !credName) throw missing(name('application_credential_id', 'OS_APPLICATION_CREDENTIAL_ID'), where);
    if (!id && !user.userId && !(user.username && (user.userDomainName || user.userDomainId))) {
      throw missing(`${name('user_id', 'OS_USER_ID')} (or username and user domain, to use a credential by name)`, where);
    }
    return { type: 'application_credential', id, name: id ? undefined : credName, ...user, secret };
  }

  if (type !== 'password' && type !== 'v3password') {
    throw new UserError(`auth type "${type}" is not supported`, 'Use an application credential (v3applicationcredential) or password auth.', 'CLOUD_AUTH_UNSUPPORTED');
  }
  if (!user.username && !user.userId) throw missing(name('username', 'OS_USERNAME'), where);
  if (user.username && !user.userId && !user.userDomainName && !user.userDomainId) throw missing(name('user_domain_name', 'OS_USER_DOMAIN_NAME'), where);
  const project = {
    projectId: str(a.project_id) ?? str(a.tenant_id),
    projectName: str(a.project_name) ?? str(a.tenant_name),
    projectDomainName: str(a.project_domain_name),
    projectDomainId: str(a.project_domain_id),
  };
  if (!project.projectId && !project.projectName) throw missing(name('project_id', 'OS_PROJECT_ID'), where);
  if (!project.projectId && !project.projectDomainName && !project.projectDomainId) {
    throw missing(`${name('project_domain_id', 'OS_PROJECT_DOMAIN_ID')} (or ${name('project_domain_name', 'OS_PROJECT_DOMAIN_NAME')}), to find project "${project.projectName}" by name`, where);
  }
  let password = str(a.password);
  if (!password) {
    const variable = fromEnv ? 'OS_PASSWORD' : 'OS_PASSWORD (or auth.password in clouds.yaml / secure.yaml)';
    if (!options.interactive) {
      throw new UserError(`no OpenStack password for user "${user.username ?? user.userId}": set ${variable}`, 'Without --yes on a terminal, depl asks for it instead.', 'CLOUD_PASSWORD_MISSING');
    }
    password = await (options.askPassword ?? askPasswordMasked)(`OpenStack password for ${user.username ?? user.userId}:`);
    if (!password) throw new UserError('no password entered', `Set ${variable} to avoid the prompt.`, 'CLOUD_PASSWORD_MISSING');
  }
  registerSecret(password);
  return { type: 'password', ...user, password, ...project };
}

async function askPasswordMasked(message: string): Promise<string> {
  const { password } = await import('@inquirer/prompts');
  return password({ message, mask: '*' }, { output: process.stderr });
}

/** The variables an openrc file sets, in clouds.yaml's shape so one code path reads both. */
function settingsFromEnv(env: NodeJS.ProcessEnv): RawCloud {
  const pick = (...names: string[]) => names.map((n) => env[n]).find((v) => v !== undefined && v !== '');
  const auth: Record<string, unknown> = {
    auth_url: pick('OS_AUTH_URL'),
    username: pick('OS_USERNAME'),
    user_id: pick('OS_USER_ID'),
    user_domain_name: pick('OS_USER_DOMAIN_NAME'),
    user_domain_id: pick('OS_USER_DOMAIN_ID'),
    password: pick('OS_PASSWORD'),
    project_id: pick('OS_PROJECT_ID', 'OS_TENANT_ID'),
    project_name: pick('OS_PROJECT_NAME', 'OS_TENANT_NAME'),
    project_domain_name: pick('OS_PROJECT_DOMAIN_NAME'),
    project_domain_id: pick('OS_PROJECT_DOMAIN_ID'),
    application_credential_id: pick('OS_APPLICATION_CREDENTIAL_ID'),
    application_credential_name: pick('OS_APPLICATION_CREDENTIAL_NAME'),
    application_credential_secret: pick('OS_APPLICATION_CREDENTIAL_SECRET'),
  };
  for (const key of Object.keys(auth)) if (auth[key] === undefined) delete auth[key];
  return { auth, auth_type: pick('OS_AUTH_TYPE'), region_name: pick('OS_REGION_NAME'), interface: pick('OS_INTERFACE', 'OS_ENDPOINT_TYPE'), cacert: pick('OS_CACERT') };
}

async function firstReadable(files: string[]): Promise<string | undefined> {
  for (const file of files) {
    try {
      await readFile(file);
      return file;
    } catch {
      // not there: try the next place on the search path
    }
  }
  return undefined;
}

async function readClouds(file: string): Promise<Record<string, RawCloud>> {
  const doc = await readYaml(file);
  const clouds = doc.clouds;
  if (clouds === undefined) return {};
  if (!isObject(clouds)) throw new UserError(`${file}: "clouds" must be a mapping of cloud names`, undefined, 'CLOUDS_YAML_INVALID');
  const out: Record<string, RawCloud> = {};
  for (const [name, value] of Object.entries(clouds)) {
    if (!isObject(value)) throw new UserError(`${file}: clouds.${name} must be a mapping`, undefined, 'CLOUDS_YAML_INVALID');
    out[name] = { ...value, auth: isObject(value.auth) ? value.auth : {} };
  }
  return out;
}

/**
 * A cloud's `regions:` (names, or `{name, values}` whose values override the cloud's settings), as
 * openstacksdk reads it: the region asked for must be one of them; none asked for means the first.
 */
function withRegion(cloud: RawCloud, wanted: string | undefined, cloudName: string, file: string): RawCloud {
  const raw = cloud.regions;
  if (raw === undefined) return wanted === undefined ? cloud : { ...cloud, region_name: wanted };
  if (!Array.isArray(raw) || raw.length === 0) throw new UserError(`${file}: clouds.${cloudName}.regions must be a non-empty list`, undefined, 'CLOUDS_YAML_INVALID');
  const regions = raw.map((entry, i) => {
    if (typeof entry === 'string') return { name: entry, values: {} as Record<string, unknown> };
    if (isObject(entry) && typeof entry.name === 'string') return { name: entry.name, values: isObject(entry.values) ? entry.values : {} };
    throw new UserError(`${file}: clouds.${cloudName}.regions[${i}] must be a name or {name, values}`, undefined, 'CLOUDS_YAML_INVALID');
  });
  const name = wanted ?? str(cloud.region_name) ?? regions[0]!.name;
  const region = regions.find((r) => r.name === name);
  if (!region) {
    throw new UserError(
      `region "${name}" is not one of cloud "${cloudName}"'s regions (${regions.map((r) => r.name).join(', ')}) in ${file}`,
      'Set provider.region (or OS_REGION_NAME) to one of them, or add it to regions: in clouds.yaml.',
      'CLOUD_REGION_UNKNOWN',
    );
  }
  return { ...deepMerge(cloud, region.values as Partial<RawCloud>), region_name: region.name };
}

async function readYaml(file: string): Promise<Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new UserError(`${file} is not valid YAML: ${(error as Error).message.split('\n')[0]}`, undefined, 'CLOUDS_YAML_INVALID');
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isObject(parsed)) throw new UserError(`${file} must be a YAML mapping with a "clouds" key`, undefined, 'CLOUDS_YAML_INVALID');
  return parsed;
}

function deepMerge(base: RawCloud, extra: Partial<RawCloud>): RawCloud {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    out[key] = isObject(value) && isObject(out[key]) ? { ...(out[key] as object), ...value } : value;
  }
  return out as RawCloud;
}

function missing(what: string, where: string): UserError {
  return new UserError(`OpenStack credentials from ${where} lack ${what}`, `Set ${what.split(' ')[0]}.`, 'CLOUD_CONFIG_INCOMPLETE');
}

function str(value: unknown): string | undefined {
  if (typeof value === 'number') return String(value);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
