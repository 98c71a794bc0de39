import path from 'node:path';
import { parse } from 'yaml';
import { viewVault } from '../apply/ansible.js';
import { readSecretsFile, generateSecretValue, writeSecretsFile, secretsFilePath, type SecretsSource } from '../apply/secrets-store.js';
import { UserError } from '../errors.js';
import { checkSecretName } from '../names.js';
import { checkSecretValue, secretEnvName } from '../plan/secrets.js';
import { ansibleVaultViewCommand, pickVaultSecrets } from '../plan/vault-import.js';
import { Secret } from '../util/secret.js';

/**
 * `depl secrets set|list|rm`: the local secrets file. Values are never printed, only names and dates. Each takes
 * the secrets' slice of depl.yaml (its folder, its path, the declared names: adapter-slices.ts secretsSource).
 */

export interface SecretRow {
  name: string;
  declared: boolean;
  /** Where buildinst would take the value from. */
  source: 'env' | 'file' | 'missing';
  changedAt: string | null;
}

export async function listSecrets(source: SecretsSource, env: NodeJS.ProcessEnv = process.env): Promise<SecretRow[]> {
  const entries = await readSecretsFile(source.root);
  const names = [...new Set([...source.declared, ...entries.map((e) => e.name)])].sort();
  return names.map((name) => {
    const entry = entries.find((e) => e.name === name);
    const fromEnv = env[secretEnvName(name)];
    return {
      name,
      declared: source.declared.includes(name),
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

export async function setSecret(source: SecretsSource, name: string, options: SetSecretOptions): Promise<{ name: string; changedAt: string; generated: boolean; file: string }> {
  checkName(source, name);
  const raw = options.generate ? generateSecretValue() : (await options.readValue()).replace(/\r?\n$/, '');
  const value = new Secret(raw);
  const check = checkSecretValue(value.reveal());
  if (!check.ok) throw new UserError(`the value for ${name} ${check.reason}`, 'Nothing was changed.', 'SECRET_VALUE');
  const entries = (await readSecretsFile(source.root)).filter((e) => e.name !== name);
  const changedAt = options.now.toISOString();
  entries.push({ name, value: value.reveal(), changedAt });
  await writeSecretsFile(source.root, entries);
  return { name, changedAt, generated: options.generate === true, file: secretsFilePath(source.root) };
}

export async function removeSecret(source: SecretsSource, name: string): Promise<{ name: string; removed: boolean; stillDeclared: boolean }> {
  const entries = await readSecretsFile(source.root);
  const kept = entries.filter((e) => e.name !== name);
  if (kept.length === entries.length) {
    throw new UserError(`no secret named ${name} in ${secretsFilePath(source.root)}`, 'See `depl secrets list`.', 'SECRET_NOT_FOUND');
  }
  await writeSecretsFile(source.root, kept);
  return { name, removed: true, stillDeclared: source.declared.includes(name) };
}

function checkName(source: SecretsSource, name: string): void {
  const check = checkSecretName(name);
  if (!check.ok) throw new UserError(`secret name "${name}" ${check.reason}`, undefined, 'SECRET_NAME');
  if (!source.declared.includes(name)) {
    throw new UserError(
      `${source.file} does not declare a secret named ${name} (declared: ${source.declared.join(', ') || 'none'})`,
      `Add it to the top-level secrets: list first, and to the services that use it.`,
      'SECRET_UNDECLARED',
    );
  }
}

export interface VaultImportOptions {
  vaultFile: string;
  passwordFile?: string;
  /** Variables to copy; none: every secret depl.yaml declares that the vault holds. */
  names: string[];
  /** May ansible-vault ask for the password on the terminal? */
  interactive: boolean;
  now: Date;
}

/** `depl secrets import --vault FILE`: named variables of an Ansible Vault file into the secrets file, never printed. */
export async function importVaultSecrets(source: SecretsSource, options: VaultImportOptions): Promise<{ imported: string[]; changedAt: string; file: string }> {
  for (const name of options.names) {
    const check = checkSecretName(name);
    if (!check.ok) throw new UserError(`secret name "${name}" ${check.reason}`, undefined, 'SECRET_NAME');
  }
  if (options.passwordFile === undefined && !options.interactive) {
    throw new UserError('no vault password: depl asks for it only on a terminal, and never with --yes', 'Pass --vault-password-file FILE.', 'VAULT_PASSWORD');
  }
  const vaultFile = path.resolve(options.vaultFile);
  const plaintext = await viewVault(ansibleVaultViewCommand(vaultFile, options.passwordFile && path.resolve(options.passwordFile)), { prompt: options.passwordFile === undefined });
  let document: unknown;
  try {
    document = parse(plaintext.reveal());
  } catch {
    throw new UserError(`${options.vaultFile} opens, but its content is not YAML variables`, 'An Ansible Vault file of name: value lines is expected. Nothing was changed.', 'VAULT_CONTENT');
  }
  const pick = pickVaultSecrets(document, options.names, source.declared);
  if ('refuse' in pick) throw new UserError(`${options.vaultFile}: ${pick.refuse}`, 'Nothing was changed.', 'VAULT_IMPORT');
  const imported = new Set(pick.values.map((v) => v.name));
  const changedAt = options.now.toISOString();
  const entries = (await readSecretsFile(source.root)).filter((e) => !imported.has(e.name));
  for (const { name, value } of pick.values) entries.push({ name, value: new Secret(value).reveal(), changedAt });
  await writeSecretsFile(source.root, entries);
  return { imported: [...imported], changedAt, file: secretsFilePath(source.root) };
}
