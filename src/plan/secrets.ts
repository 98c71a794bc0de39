import { createHash, scryptSync } from 'node:crypto';
import { parseEnv } from 'node:util';
import { checkSecretName } from '../names.js';

/**
 * The local secrets file (`.depl/secrets`, 0600, git-ignored: Kamal's .kamal/secrets) as data: dotenv lines
 * `name=value`, each after a comment recording when it changed. Parsing and rendering are pure; the file is
 * read and written by src/apply/secrets-store.ts.
 */

export interface SecretEntry {
  name: string;
  value: string;
  /** ISO time of the last `depl secrets set` (or `depl init`); null when the file was edited by hand. */
  changedAt: string | null;
}

const CHANGED = /^#\s*([a-z][a-z0-9_]*)\s+changed\s+(\S+)\s*$/;

export function parseSecretsFile(text: string): SecretEntry[] {
  const values = parseEnv(text) as Record<string, string>;
  const changed = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = CHANGED.exec(line.trim());
    if (match) changed.set(match[1]!, match[2]!);
  }
  return Object.entries(values)
    .filter(([name]) => checkSecretName(name).ok)
    .map(([name, value]) => ({ name, value, changedAt: changed.get(name) ?? null }));
}

/** The first words of the file depl writes: how a copy of it is recognised (src/plan/build-context.ts). */
export const SECRETS_FILE_MARK = '# depl secrets:';

const HEADER = `${SECRETS_FILE_MARK} one name=value per line. Never commit this file (it is 0600 and git-ignored).
# Change a value with \`depl secrets set <name>\`; the next \`depl buildinst\` installs it as a new swarm secret.
# A DEPL_SECRET_<NAME> environment variable overrides the value here.
`;

export function renderSecretsFile(entries: SecretEntry[]): string {
  const lines = [HEADER];
  for (const entry of [...entries].sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.changedAt !== null) lines.push(`# ${entry.name} changed ${entry.changedAt}`);
    lines.push(`${entry.name}=${quoteValue(entry.value)}`);
  }
  return lines.join('\n') + '\n';
}

/** A value that does not survive the round trip through the file is refused, with what to change. */
export function checkSecretValue(value: string): { ok: true } | { ok: false; reason: string } {
  if (value.length === 0) return { ok: false, reason: 'is empty' };
  if (/[\r\n\0]/.test(value)) return { ok: false, reason: 'has a line break or NUL; a secret is one line' };
  const back = parseEnv(`x=${quoteValue(value)}\n`) as Record<string, string>;
  if (back.x !== value) return { ok: false, reason: 'mixes quote characters in a way the secrets file cannot hold' };
  return { ok: true };
}

function quoteValue(value: string): string {
  if (/^[A-Za-z0-9_\-.~+/=:@%,]*$/.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"') && !value.includes('\\')) return `"${value}"`;
  return `\`${value}\``;
}

/** The environment variable that overrides a secret: api_token -> DEPL_SECRET_API_TOKEN. */
export function secretEnvName(name: string): string {
  return `DEPL_SECRET_${name.toUpperCase()}`;
}

/**
 * Swarm secrets are immutable, so each value gets its own swarm secret `<app>-<name>-<version>`; a new value
 * is a new name, taken by the next buildinst, and running versions keep the one they started with. The
 * version is derived with scrypt (salted by app and name), so the name says when the value changed without
 * offering a cheap way to test guesses of a weak password against it.
 */
export function secretVersion(app: string, name: string, value: string): string {
  const salt = createHash('sha256').update(`depl-secret\0${app}\0${name}`).digest();
  return scryptSync(value, salt, 16, { N: 1 << 14, r: 8, p: 1 }).toString('hex').slice(0, 12);
}

export function swarmSecretName(app: string, name: string, version: string): string {
  return `${app}-${name}-${version}`;
}

/** `/run/secrets/api_token` -> `api_token`; null for any other path. */
export function secretNameAtPath(file: string): string | null {
  const match = /^\/run\/secrets\/([a-z][a-z0-9_]{0,29})$/.exec(file);
  return match ? match[1]! : null;
}

/** Where a service finds a secret: the file a swarm secret is mounted at. */
export function secretPath(name: string): string {
  return `/run/secrets/${name}`;
}
