import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { generateMissingSecrets, importSecretValues, secretsFilePath } from '../apply/secrets-store.js';
import { OperationError, UserError } from '../errors.js';
import { parseConfig } from '../config/load.js';
import type { DeplConfig } from '../config/schema.js';
import { deplIgnoreLines, withDeplIgnores } from '../plan/dockerignore.js';
import { appNameFrom, ComposeError, envFilePaths, exposedPort, translateCompose, type ComposeImport, type SecretImport } from '../plan/compose-import.js';
import { composeVerdicts } from '../plan/compose-verdict.js';
import { checkSecretValue } from '../plan/secrets.js';
import { appFromCompose, dockerfileApp, exampleContext, INIT_OPENSTACK_CLOUD, intendedImportedDocument, intendedInitDocument, renderImportedConfig, renderInitConfig, type AppDraft, type InitChoices } from '../plan/init-config.js';
import { renderedDifferences } from '../plan/yaml-render.js';
import { checkAppName, checkDomainName, checkHealthPath } from '../names.js';
import { proposeDomain, zoneHolding } from '../plan/domain-records.js';
import { checkContactEmail, initTls, type InitTls } from '../plan/tls/init-tls.js';
import { packagePath, packageRoot } from '../util/paths.js';
import { visible } from '../util/terminal-text.js';

/** The Compose Specification's file names, in the order `docker compose` looks for them. */
export const COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

export interface InitRequest extends Omit<InitChoices, 'app' | 'domain' | 'tls'> {
  /** --app; absent: the compose file's name:, else the folder's name (asked on a terminal), or crawler for the example. */
  app?: string;
  /**
   * --domain; absent: for the openstack provider `<app>.<the project's zone>` from Designate (the zero-config
   * domain, asked to confirm on a terminal), else <app>.localhost.
   */
  domain?: string;
  /** --no-tls: write `tls: { mode: off }` (plain HTTP) instead of the provider's HTTPS. */
  noTls?: boolean;
  /** --tls-email: the ACME account's contact address (absent: asked on a terminal, else none; see src/plan/tls/init-tls.ts). */
  tlsEmail?: string;
  /** Where compose secrets' `environment:` values are read (default: this process's environment). */
  env?: NodeJS.ProcessEnv;
  /** The depl.yaml to write; its folder is the one looked at. */
  file: string;
  force: boolean;
  /** An explicit Compose file or Dockerfile. */
  from?: string;
  example?: 'crawler';
  port?: number;
  health?: string;
  /** Asks for what a Dockerfile does not say (port, health path); absent with --yes or without a TTY. */
  ask?: (question: { message: string; default: string; validate: (v: string) => true | string }) => Promise<string>;
}

export interface InitResult {
  file: string;
  app: string;
  domain: string;
  /** Compose secrets whose values were imported into the secrets file (names only, never values). */
  importedSecrets: string[];
  /** One line per compose service: runs as under compose, or what differs and why. */
  verdicts: string[];
  /** What the app was made from: `compose.yaml`, `Dockerfile`, or `example crawler`. */
  source: string;
  services: string[];
  accessories: string[];
  secrets: string[];
  /** Secrets that had no value yet and got a strong random one in the secrets file. */
  generatedSecrets: string[];
  secretsFile: string;
  notTranslated: string[];
  /** The .dockerignore files depl's lines were added to (created when missing). */
  dockerignores: string[];
  /** The zero-config domain: the Designate zone depl keeps the domain's records in, and how it was chosen. */
  dns?: { zone: string; note: string };
  /** The tls: section written, and why; absent when none was (the local provider's default: off). */
  tls?: InitTls & { note: string };
}

type Source = { kind: 'compose' | 'dockerfile'; file: string } | { kind: 'example' };

/**
 * `depl init`: looks at the folder depl.yaml goes into and writes a commented depl.yaml for what it finds:
 * a Compose file's services and accessories, a lone Dockerfile as one HTTP service, or (in a folder with
 * neither) the example crawler. The text is validated before it is written; an existing file is never
 * replaced without --force.
 */
export async function initConfig(req: InitRequest): Promise<InitResult> {
  checkTlsFlags(req);
  const folder = path.dirname(req.file);
  const source = await chooseSource(req, folder);
  const template = await readFile(packagePath('templates', 'depl.example.yaml'), 'utf8');
  let text: string;
  let intended: Record<string, unknown>;
  let result: Omit<InitResult, 'file' | 'generatedSecrets' | 'secretsFile' | 'dockerignores' | 'importedSecrets'>;
  let secretValues: SecretValueSource[] = [];
  let dns: ChosenDomain;
  let tls: ChosenTls;
  if (source.kind === 'example') {
    const app = req.app ?? 'crawler';
    dns = await chooseDomain(req, app, folder);
    tls = await chooseTls(req, dns);
    const choices = { ...req, app, domain: dns.domain, dnsZone: dns.zone, tls: tls.tls, exampleContext: exampleContext(folder, packageRoot, path.relative) };
    text = renderInitConfig(template, choices);
    intended = intendedInitDocument(template, choices);
    const config = parseConfig(text, req.file);
    result = { app, domain: choices.domain, source: 'example crawler', services: Object.keys(config.services), accessories: Object.keys(config.accessories), secrets: config.secrets, notTranslated: [], verdicts: [] };
  } else {
    const relative = path.relative(folder, source.file) || path.basename(source.file);
    let draft: AppDraft;
    let verdicts: string[] = [];
    let composeName: string | undefined;
    if (source.kind === 'compose') {
      const { doc, imported } = await readCompose(source.file);
      draft = appFromCompose(imported);
      composeName = imported.name;
      verdicts = composeVerdicts(Object.keys((doc as { services: object }).services), imported, draft.notTranslated);
      secretValues = imported.secretImports.map((s) => ({ ...s, file: 'file' in s.from ? path.resolve(path.dirname(source.file), s.from.file) : undefined }));
    } else {
      draft = dockerfileApp({ dockerfile: relative, ...(await portAndHealth(req, source.file)) });
    }
    const app = await appName(req, composeName, folder);
    dns = await chooseDomain(req, app, folder);
    tls = await chooseTls(req, dns);
    const choices = { ...req, app, domain: dns.domain, dnsZone: dns.zone, tls: tls.tls };
    text = renderImportedConfig(template, choices, draft, relative);
    intended = intendedImportedDocument(template, choices, draft);
    result = { app, domain: choices.domain, source: relative, services: Object.keys(draft.services), accessories: Object.keys(draft.accessories), secrets: draft.secrets, notTranslated: draft.notTranslated, verdicts };
  }
  // exactly these bytes are checked and written: a lone surrogate, say, would not survive UTF-8 unchanged
  const bytes = Buffer.from(text, 'utf8');
  const written = bytes.toString('utf8');
  checkRendered(written, intended, result.source, req.file);
  const config = parseConfig(written, req.file); // a translation depl itself cannot read is a bug, not the user's problem
  try {
    // 0600: depl.yaml names the app's secrets and hosts, and is the operator's own
    await writeFile(req.file, bytes, { flag: req.force ? 'w' : 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UserError(`${req.file} already exists`, 'Pass --force to overwrite it, or --config to write elsewhere.', 'CONFIG_EXISTS');
    }
    throw error;
  }
  await chmod(req.file, 0o600); // --force over an older, wider file
  const env = req.env ?? process.env;
  // compose's own secret values first (never printed), then strong random values for those still without one
  const imported = await importComposeSecrets(folder, secretValues, env);
  const generatedSecrets = await generateMissingSecrets(folder, config.secrets, new Date(), env);
  // the example builds from depl's own package, whose .dockerignore is kept there
  const dockerignores = source.kind === 'example' ? [] : await addDeplIgnores(config, folder, req.file);
  return {
    file: req.file, ...result, notTranslated: [...result.notTranslated, ...imported.notes], importedSecrets: imported.names,
    generatedSecrets, secretsFile: secretsFilePath(folder), dockerignores,
    ...(dns.zone !== undefined && dns.note !== undefined ? { dns: { zone: dns.zone, note: dns.note } } : {}),
    ...(tls.tls !== undefined && tls.note !== undefined ? { tls: { ...tls.tls, note: tls.note } } : {}),
  };
}

type ChosenTls = ReturnType<typeof initTls>;

/** --no-tls and --tls-email, checked before anything is asked or read (exit 2, nothing written). */
function checkTlsFlags(req: InitRequest): void {
  if (req.tlsEmail === undefined) return;
  if (req.noTls === true) throw new UserError('--tls-email and --no-tls exclude each other', 'Pass --tls-email for HTTPS with that contact address, or --no-tls for plain HTTP.', 'INIT_USAGE');
  if (req.provider === 'local') {
    throw new UserError('--tls-email is for certificates from Let\'s Encrypt, which the local provider\'s nodes cannot get (nothing on the internet reaches them)', 'Leave it out: the local provider serves plain HTTP.', 'INIT_USAGE');
  }
  const check = checkContactEmail(req.tlsEmail);
  if (!check.ok) throw new UserError(`--tls-email "${visible(req.tlsEmail)}" ${check.reason}`, 'Pass an address of your own that receives mail, or leave --tls-email out: the account needs none.', 'INIT_TLS_EMAIL');
}

/**
 * The tls: section for the chosen domain (src/plan/tls/init-tls.ts initTls). For ACME without --tls-email, a
 * terminal is asked for the account's contact address, which may be left empty; without one, there is none.
 */
async function chooseTls(req: InitRequest, domain: ChosenDomain): Promise<ChosenTls> {
  const choose = (email: string | undefined) => initTls({
    provider: req.provider, domain: domain.domain, off: req.noTls === true,
    ...(domain.zone !== undefined ? { dnsZone: domain.zone } : {}), ...(email !== undefined ? { email } : {}),
  });
  const chosen = choose(req.tlsEmail);
  if (chosen.tls?.mode !== 'acme' || req.tlsEmail !== undefined || req.ask === undefined) return chosen;
  const validate = (v: string) => {
    if (v.trim() === '') return true;
    const check = checkContactEmail(v.trim());
    return check.ok ? true : `the address ${check.reason}`;
  };
  const answer = (await req.ask({ message: 'Contact e-mail for the Let\'s Encrypt account (optional: Enter for none)', default: '', validate })).trim();
  return answer === '' ? chosen : choose(answer);
}

interface ChosenDomain {
  domain: string;
  /** Set when depl keeps the domain's records in this Designate zone (provider.dns.zone). */
  zone?: string;
  note?: string;
}

/**
 * The domain: --domain as given; for the openstack provider without one, `<app>.<zone>` in the project's
 * Designate zone (src/plan/domain-records.ts proposeDomain), confirmed on a terminal and taken with a note
 * without one; `<app>.localhost` for the local provider. Designate is asked through the cloud depl.yaml will name.
 */
async function chooseDomain(req: InitRequest, app: string, folder: string): Promise<ChosenDomain> {
  if (req.domain !== undefined) return { domain: req.domain };
  if (req.provider !== 'openstack') return { domain: `${app}.localhost` };
  let zones: string[];
  let projectName: string | undefined;
  try {
    const [{ openstackSession }, { DesignateClient }] = await Promise.all([import('../apply/providers/openstack.js'), import('../apply/openstack/designate.js')]);
    const session = await openstackSession({ root: folder }, { cloud: INIT_OPENSTACK_CLOUD }, { interactive: req.ask !== undefined, ...(req.env ? { env: req.env } : {}) });
    zones = (await new DesignateClient(session).zones()).map((z) => z.name);
    projectName = await session.projectName();
  } catch (error) {
    if (!(error instanceof UserError || error instanceof OperationError)) throw error;
    throw new UserError(
      `depl init could not ask Designate for the project's DNS zone (to propose a domain): ${error.message}`,
      `${error.hint ? `${error.hint} ` : ''}Or pass --domain with a name you point at the cluster yourself.`,
      'INIT_DOMAIN_ZONE',
      { cause: error },
    );
  }
  const proposal = proposeDomain({ app, zones: zones.map((name) => ({ id: name, name })), ...(projectName !== undefined ? { projectName } : {}) });
  if (proposal.kind === 'no-zone') {
    throw new UserError(`depl init cannot propose a domain: ${proposal.why}`, 'Pass --domain with a name you point at the cluster yourself, or ask your cloud\'s support for the project\'s DNS zone.', 'INIT_DOMAIN_ZONE');
  }
  const explain = 'node-up points it and *.<it> at the cluster, node-down removes those records, HTTPS uses DNS-01 in the zone';
  if (req.ask !== undefined) {
    const offered = proposal.kind === 'proposed' ? proposal.domain : `${app}.${proposal.zones[0]!.slice(0, -1)}`;
    const message = proposal.kind === 'proposed'
      ? `Domain (${proposal.why}${proposal.others.length > 0 ? `; others: ${proposal.others.join(', ')}` : ''}; in it, ${explain})`
      : `Domain (${proposal.why}; a name in one of them is kept by depl: ${explain})`;
    const answer = (await req.ask({ message, default: offered, validate: (v) => { const c = checkDomainName(v); return c.ok ? true : `the domain ${c.reason}`; } })).replace(/\.$/, '');
    const zone = zoneHolding(answer, zones);
    return zone === undefined
      ? { domain: answer }
      : { domain: answer, zone, note: `${answer} is in the project's Designate zone ${zone}: ${explain}.` };
  }
  if (proposal.kind === 'ambiguous') {
    throw new UserError(`depl init cannot choose a domain: ${proposal.why}`, `Pass --domain ${app}.<zone> with one of them (depl then keeps its records there), or a name of your own.`, 'INIT_DOMAIN_ZONE');
  }
  const others = proposal.others.length > 0 ? ` (also in the project: ${proposal.others.join(', ')}; pass --domain to use one of those)` : '';
  return { domain: proposal.domain, zone: proposal.zone, note: `domain ${proposal.domain}: ${proposal.why}${others}; ${explain}. Pass --domain to use a name of your own.` };
}

interface SecretValueSource extends SecretImport {
  /** The absolute path of a `file:` secret. */
  file: string | undefined;
}

/**
 * Reads each compose secret's value (its file, or its environment variable) into .depl/secrets, where none is
 * there yet. A value that cannot be read, or cannot be one line of the secrets file, is left to be generated,
 * with a note saying so; a value already there is kept (it may be in use on the cluster).
 */
async function importComposeSecrets(folder: string, sources: SecretValueSource[], env: NodeJS.ProcessEnv): Promise<{ names: string[]; notes: string[] }> {
  const values: { name: string; value: string }[] = [];
  const notes: string[] = [];
  for (const source of sources) {
    const where = `secrets.${source.composeName}`;
    let value: string | undefined;
    if (source.file !== undefined) {
      value = await readFile(source.file, 'utf8').then((t) => t.replace(/\r?\n$/, ''), () => undefined);
      if (value === undefined) notes.push(`${where}.file: cannot read ${source.file}; depl generated a value instead (set yours with depl secrets set ${source.name})`);
    } else if ('env' in source.from) {
      value = env[source.from.env];
      if (value === undefined || value === '') {
        notes.push(`${where}.environment: ${source.from.env} is not set here; depl generated a value instead (set yours with depl secrets set ${source.name})`);
        value = undefined;
      }
    }
    if (value === undefined) continue;
    const check = checkSecretValue(value);
    if (!check.ok) {
      notes.push(`${where}: its value ${check.reason}; depl generated one instead (set yours with depl secrets set ${source.name})`);
      continue;
    }
    values.push({ name: source.name, value });
  }
  return { names: await importSecretValues(folder, values, new Date(), env), notes };
}

/** --app, else the compose file's name: or the folder's (offered on a terminal), made a valid app name. */
async function appName(req: InitRequest, composeName: string | undefined, folder: string): Promise<string> {
  if (req.app !== undefined) return req.app;
  const derived = appNameFrom(composeName, path.basename(path.resolve(folder)));
  if (req.ask) {
    const answer = await req.ask({ message: 'App name (prefixes every service; unique per cluster)', default: derived ?? '', validate: (v) => { const c = checkAppName(v); return c.ok ? true : `the app name ${c.reason}`; } });
    return answer;
  }
  if (derived === null) {
    throw new UserError(`no app name can be made from ${composeName !== undefined ? `the compose name "${composeName}" or ` : ''}the folder "${path.basename(path.resolve(folder))}"`, 'Pass --app NAME (lower-case letters, digits and "-", at most 20 characters).', 'INIT_APP_NAME');
  }
  return derived;
}

/** depl's lines in the .dockerignore of every build context that holds depl.yaml's folder (src/plan/dockerignore.ts). */
async function addDeplIgnores(config: DeplConfig, folder: string, configFile: string): Promise<string[]> {
  const contexts = new Set(Object.values(config.services).flatMap((svc) => (svc.build ? [path.resolve(folder, svc.build.context)] : [])));
  const written: string[] = [];
  for (const context of contexts) {
    const lines = deplIgnoreLines(context, folder, configFile);
    if (lines === null) continue;
    const file = path.join(context, '.dockerignore');
    const existing = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw new UserError(`cannot read ${file}: ${error.message}`, undefined, 'DOCKERIGNORE_UNREADABLE');
    });
    const text = withDeplIgnores(existing, lines);
    if (text === null) continue;
    await writeFile(file, text);
    written.push(file);
  }
  return written;
}

/**
 * The file must read back as exactly what depl meant to write: no key more, none less, no value changed. Input
 * that got out of its scalar or comment would show here, and then nothing is written.
 */
function checkRendered(text: string, intended: Record<string, unknown>, source: string, file: string): void {
  const differences = renderedDifferences(text, intended);
  if (differences.length === 0) return;
  const shown = differences.slice(0, 5).map((d) => `"${visible(d)}"`).join(', ') + (differences.length > 5 ? `, and ${differences.length - 5} more` : '');
  throw new OperationError(
    `depl init did not write ${file}: the text made from ${visible(source)} does not read back as what depl meant to write (${shown})`,
    'This is a bug in depl: please report it with the file depl init read. Meanwhile rename the keys or values named above, or write depl.yaml by hand.',
    'INIT_RENDER_MISMATCH',
  );
}

async function chooseSource(req: InitRequest, folder: string): Promise<Source> {
  if (req.example !== undefined && req.from !== undefined) throw new UserError('--example and --from exclude each other', 'Pass one of them.', 'INIT_USAGE');
  if (req.example !== undefined) return { kind: 'example' };
  if (req.from !== undefined) {
    const file = path.resolve(req.from);
    const text = await readFile(file, 'utf8').catch(() => {
      throw new UserError(`cannot read --from ${req.from}`, 'Name a Compose file (compose.yaml) or a Dockerfile.', 'INIT_FROM');
    });
    return { kind: isDockerfile(file, text) ? 'dockerfile' : 'compose', file };
  }
  const names = new Set(await readdir(folder).catch(() => [] as string[]));
  const compose = COMPOSE_FILES.find((name) => names.has(name));
  if (compose !== undefined) return { kind: 'compose', file: path.join(folder, compose) };
  if (names.has('Dockerfile')) return { kind: 'dockerfile', file: path.join(folder, 'Dockerfile') };
  return { kind: 'example' };
}

function isDockerfile(file: string, text: string): boolean {
  return /dockerfile|containerfile/i.test(path.basename(file)) || /^\s*(#.*\n\s*)*(ARG\s.*\n\s*)*FROM\s/i.test(text);
}

async function readCompose(file: string): Promise<{ doc: unknown; imported: ComposeImport }> {
  let doc: unknown;
  try {
    doc = parse(await readFile(file, 'utf8'), { uniqueKeys: true });
  } catch (error) {
    throw new UserError(`${file} is not valid YAML: ${(error as Error).message.split('\n')[0]}`, 'Fix the Compose file, or pass --from with another one.', 'COMPOSE_INVALID');
  }
  // env_file paths are relative to the compose file; one that cannot be read is noted by the translation
  const envFiles: Record<string, string> = {};
  for (const name of envFilePaths(doc)) {
    const text = await readFile(path.resolve(path.dirname(file), name), 'utf8').catch(() => undefined);
    if (text !== undefined) envFiles[name] = text;
  }
  try {
    return { doc, imported: translateCompose(doc, { envFiles }) };
  } catch (error) {
    if (error instanceof ComposeError) throw new UserError(`${file} ${error.message}`, 'depl needs at least one service with "build:" (or an image without a volume).', 'COMPOSE_INVALID');
    throw error;
  }
}

function checkPort(value: string): true | string {
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? true : 'expected a port number from 1 to 65535';
}

function checkHealth(value: string): true | string {
  const check = checkHealthPath(value);
  return check.ok ? true : `the health path ${check.reason}`;
}

/** --port/--health, else asked (defaults: the Dockerfile's EXPOSE, or 8000; `/`), else the defaults. */
async function portAndHealth(req: InitRequest, dockerfile: string): Promise<{ port: number; health: string }> {
  const suggested = exposedPort(await readFile(dockerfile, 'utf8')) ?? 8000;
  const port = req.port ?? (req.ask ? Number(await req.ask({ message: 'Port the service listens on', default: String(suggested), validate: checkPort })) : suggested);
  const health = req.health ?? (req.ask ? await req.ask({ message: 'Health path (answers 200 when the service is ready)', default: '/', validate: checkHealth }) : '/');
  const bad = checkHealth(health);
  if (bad !== true) throw new UserError(`--health "${health}": ${bad}`, 'Pass a path on the service itself, like /healthz.', 'INIT_HEALTH');
  return { port, health };
}
