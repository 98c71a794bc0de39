import { readSecretsFile, generateSecretValue, writeSecretsFile, secretsFilePath } from '../apply/secrets-store.js';
import type { LoadedConfig } from '../config/load.js';
import { UserError } from '../errors.js';
import { checkSecretName } from '../names.js';
import { checkSecretValue, secretEnvName } from '../plan/secrets.js';
import { Secret } from '../util/secret.js';

/** `depl secrets set|list|rm`: the local secrets file. Values are never printed, only names and dates. */

export interface SecretRow {
  name: string;
  declared: boolean;
  /** Where buildinst would take the value from. */
  source: 'env' | 'file' | 'missing';
  changedAt: string | null;
}

export async function listSecrets(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): Promise<SecretRow[]> {
  const entries = await readSecretsFile(loaded.root);
  const names = [...new Set([...loaded.config.secrets, ...entries.map((e) => e.name)])].sort();
  return names.map((name) => {
    const entry = entries.find((e) => e.name === name);
    const fromEnv = env[secretEnvName(name)];
    return {
      name,
      declared: loaded.config.secrets.includes(name),
      source: fromEnv ? 'env' : entry ? 'file' : 'missing',
      changedAt: entry?.changedAt ?? null,
    };
  });
}

export interface SetSecretOptions {
  generate?: boolean;
  /** Reads the value (stdin or a hidden prompt); not called with --generate. */
  readValue: () => Promise<string>;
  now: Date;
}

export async function setSecret(loaded: LoadedConfig, name: string, options: SetSecretOptions): Promise<{ name: string; changedAt: string; generated: boolean; file: string }> {
  checkName(loaded, name);
  const raw = options.generate ? generateSecretValue() : (await options.readValue()).replace(/\r?\n$/, '');
  const value = new Secret(raw);
  const check = checkSecretValue(value.reveal());
  if (!check.ok) throw new UserError(`the value for ${name} ${check.reason}`, 'Nothing was changed.', 'SECRET_VALUE');
  const entries = (await readSecretsFile(loaded.root)).filter((e) => e.name !== name);
  const changedAt = options.now.toISOString();
  entries.push({ name, value: value.reveal(), changedAt });
  await writeSecretsFile(loaded.root, entries);
  return { name, changedAt, generated: options.generate === true, file: secretsFilePath(loaded.root) };
}

export async function removeSecret(loaded: LoadedConfig, name: string): Promise<{ name: string; removed: boolean; stillDeclared: boolean }> {
  const entries = await readSecretsFile(loaded.root);
  const kept = entries.filter((e) => e.name !== name);
  if (kept.length === entries.length) {
    throw new UserError(`no secret named ${name} in ${secretsFilePath(loaded.root)}`, 'See `depl secrets list`.', 'SECRET_NOT_FOUND');
  }
  await writeSecretsFile(loaded.root, kept);
  return { name, removed: true, stillDeclared: loaded.config.secrets.includes(name) };
}

function checkName(loaded: LoadedConfig, name: string): void {
  const check = checkSecretName(name);
  if (!check.ok) throw new UserError(`secret name "${name}" ${check.reason}`, undefined, 'SECRET_NAME');
  if (!loaded.config.secrets.includes(name)) {
    throw new UserError(
      `${loaded.file} does not declare a secret named ${name} (declared: ${loaded.config.secrets.join(', ') || 'none'})`,
      `Add it to the top-level secrets: list first, and to the services that use it.`,
      'SECRET_UNDECLARED',
    );
  }
}
