import { checkSecretValue } from './secrets.js';
import type { Argv } from './shell.js';

/**
 * `depl secrets import --vault FILE`: secrets kept in an Ansible Vault file copied into depl's secrets file. The
 * vault is opened by `ansible-vault view` (its plaintext only ever in memory); which values are taken, and why
 * one is refused, is decided here. Refusals name variables, never values.
 */
export function ansibleVaultViewCommand(vaultFile: string, passwordFile?: string): Argv {
  return ['ansible-vault', 'view', ...(passwordFile === undefined ? [] : ['--vault-password-file', passwordFile]), vaultFile];
}

export type VaultPick = { values: { name: string; value: string }[] } | { refuse: string };

/**
 * The secrets to import: the names asked for, or else every secret depl.yaml declares that the vault holds. Each
 * must be declared in depl.yaml and be one scalar value a secret can hold.
 */
export function pickVaultSecrets(document: unknown, requested: string[], declared: readonly string[]): VaultPick {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    return { refuse: 'the vault does not hold variables (a YAML mapping of name: value)' };
  }
  const variables = document as Record<string, unknown>;
  const undeclared = requested.filter((name) => !declared.includes(name));
  if (undeclared.length > 0) return { refuse: `depl.yaml declares no secret named ${undeclared.join(', ')} (declared: ${declared.join(', ') || 'none'})` };
  const names = requested.length > 0 ? requested : declared.filter((name) => name in variables);
  if (names.length === 0) return { refuse: `the vault holds none of the secrets depl.yaml declares (${declared.join(', ') || 'none'})` };
  const absent = names.filter((name) => !(name in variables));
  if (absent.length > 0) return { refuse: `the vault has no variable ${absent.join(', ')}` };
  const values: { name: string; value: string }[] = [];
  for (const name of names) {
    const raw = variables[name];
    if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
      return { refuse: `${name} in the vault is ${raw === null ? 'empty' : Array.isArray(raw) ? 'a list' : 'a mapping'}, not one value` };
    }
    const value = String(raw);
    const check = checkSecretValue(value);
    if (!check.ok) return { refuse: `the value of ${name} in the vault ${check.reason}` };
    values.push({ name, value });
  }
  return { values };
}
