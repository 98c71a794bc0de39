import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { parseSecretsFile, renderSecretsFile, secretEnvName, type SecretEntry } from '../plan/secrets.js';
import { Secret } from '../util/secret.js';
import { writeFileAtomicLocal } from './inventory.js';

/**
 * The operator's secrets: `.depl/secrets` next to depl.yaml (0600, in a folder git ignores), overridden by
 * DEPL_SECRET_<NAME> variables. Values leave this module as Secret objects, which print as [REDACTED].
 */
export function secretsFilePath(root: string): string {
  return path.join(root, '.depl', 'secrets');
}

export async function readSecretsFile(root: string): Promise<SecretEntry[]> {
  const file = secretsFilePath(root);
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw new UserError(`cannot read ${file}: ${error.message}`, undefined, 'SECRETS_UNREADABLE');
  });
  if (text === null) return [];
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new UserError(`${file} is readable by others (mode ${mode.toString(8)})`, `Run: chmod 600 ${file}`, 'SECRETS_FILE_MODE');
  }
  return parseSecretsFile(text);
}

/** `.depl/` is the operator's own: 0700, and a .gitignore so nothing in it is ever committed. */
export async function ensurePrivateDir(root: string): Promise<string> {
  const dir = path.join(root, '.depl');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await writeFile(path.join(dir, '.gitignore'), '# written by depl: secrets, keys and caches stay out of git\n*\n', { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  return dir;
}

export async function writeSecretsFile(root: string, entries: SecretEntry[]): Promise<void> {
  await ensurePrivateDir(root);
  await writeFileAtomicLocal(secretsFilePath(root), renderSecretsFile(entries), 0o600);
}

export interface ResolvedSecret {
  name: string;
  value: Secret;
  source: 'env' | 'file';
}

/** Where secrets are looked up: the project folder (its secrets file), depl.yaml's path (for messages), the names declared. */
export interface SecretsSource {
  root: string;
  file: string;
  declared: readonly string[];
}

/** Every secret depl.yaml declares, from the environment or the file; a missing one is a UserError naming it. */
export async function resolveSecrets(source: SecretsSource, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedSecret[]> {
  const { declared } = source;
  if (declared.length === 0) return [];
  const file = await readSecretsFile(source.root);
  const resolved: ResolvedSecret[] = [];
  const missing: string[] = [];
  for (const name of declared) {
    const fromEnv = env[secretEnvName(name)];
    if (fromEnv !== undefined && fromEnv !== '') {
      resolved.push({ name, value: new Secret(fromEnv), source: 'env' });
      continue;
    }
    const entry = file.find((e) => e.name === name);
    if (entry) resolved.push({ name, value: new Secret(entry.value), source: 'file' });
    else missing.push(name);
  }
  if (missing.length > 0) {
    throw new UserError(
      `no value for secret${missing.length === 1 ? '' : 's'} ${missing.join(', ')} (declared in ${source.file})`,
      `Set ${missing.length === 1 ? 'it' : 'each'} with \`depl secrets set <name>\` (or \`--generate\`), or export ${missing.map(secretEnvName).join(', ')}.`,
      'SECRET_MISSING',
    );
  }
  return resolved;
}

/** A strong random value: 32 bytes, base64url (43 characters). */
export function generateSecretValue(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Gives every declared secret that has no value anywhere a generated one (depl init, depl demo); values that
 * exist are kept. Returns the names generated.
 */
export async function generateMissingSecrets(root: string, names: readonly string[], now: Date, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const entries = await readSecretsFile(root);
  const generated = names.filter((name) => !entries.some((e) => e.name === name) && !env[secretEnvName(name)]);
  if (generated.length === 0) return [];
  for (const name of generated) entries.push({ name, value: generateSecretValue(), changedAt: now.toISOString() });
  await writeSecretsFile(root, entries);
  return generated;
}

/**
 * Writes values found for declared secrets (compose's secret files and variables, at depl init) where the
 * secrets file and the environment have none yet; a value already there is kept. Returns the names written.
 */
export async function importSecretValues(root: string, values: readonly { name: string; value: string }[], now: Date, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  if (values.length === 0) return [];
  const entries = await readSecretsFile(root);
  const written = values.filter(({ name }) => !entries.some((e) => e.name === name) && !env[secretEnvName(name)]);
  if (written.length === 0) return [];
  for (const { name, value } of written) entries.push({ name, value, changedAt: now.toISOString() });
  await writeSecretsFile(root, entries);
  return written.map((v) => v.name);
}
