import path from 'node:path';
import { DEPL_FOLDER } from './operator-files.js';
import { SECRETS_FILE_MARK } from './secrets.js';

/**
 * What may not enter a build context. Everything in a context can end up in the image (`COPY . .`), and an
 * image is loaded on every node or pushed to a registry, so whoever can read it would own the cluster if the
 * operator's files were in it. Two rules, both applied by src/apply/build-context.ts after .dockerignore:
 * - the operator's files (src/plan/operator-files.ts) are left out, whatever .dockerignore says: a `!`
 *   exception cannot put them back;
 * - a context that would still carry a private key or a copy of depl's secrets file is refused: depl cannot
 *   tell whether the app needs that file, so the operator decides (.dockerignore it, or move it away).
 */

export interface ContextExclusions {
  /** Paths relative to the context, `/`-separated: the path itself and, for a folder, everything under it. */
  paths: string[];
  /** Names left out wherever they are in the context: depl's folder, another project's included. */
  names: string[];
  /** depl's backup file names (src/plan/operator-files.ts: backupFilePattern), wherever they are. */
  backups: RegExp | null;
}

function inside(folder: string, file: string): string | null {
  const relative = path.relative(folder, file);
  if (relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative)) return null;
  return relative.split(path.sep).join('/');
}

/** The rules for one context, from the absolute paths of the operator's files (operatorPaths). */
export function contextExclusions(contextDir: string, operatorPaths: readonly string[], backups: RegExp | null = null): ContextExclusions {
  const paths = operatorPaths.map((file) => inside(contextDir, file)).filter((p): p is string => p !== null && p !== '');
  return { paths: [...new Set(paths)].sort(), names: [DEPL_FOLDER], backups };
}

/** The operator's folder or file that the context itself lies in (`context: .depl/x`), or null. */
export function contextWithinOperatorPath(contextDir: string, operatorPaths: readonly string[]): string | null {
  return operatorPaths.find((file) => inside(file, contextDir) !== null) ?? null;
}

/** Whether a path of the context (relative, `/`-separated) is left out by depl's own rules. */
export function isExcludedFromContext(relative: string, exclusions: ContextExclusions): boolean {
  const parts = relative.split('/');
  if (parts.some((part) => exclusions.names.includes(part))) return true;
  if (exclusions.paths.some((p) => relative === p || relative.startsWith(`${p}/`))) return true;
  return exclusions.backups?.test(parts[parts.length - 1]!) ?? false;
}

/**
 * How much of each file the secret check reads, and the largest file it opens. Keys start at the top of their
 * file (after at most a few lines of attributes, as `openssl pkcs12` writes them), and no key file is near 64
 * KiB (a 16384-bit RSA key in PEM is 12 KiB). Reading only the head of files that small keeps the check to one
 * small read per file, whatever the context holds (media, archives, lockfiles are skipped by their size).
 */
export const SNIFF_BYTES = 4096;
export const SNIFF_MAX_SIZE = 64 * 1024;

/**
 * PEM private keys of every kind (PKCS#1, PKCS#8, encrypted, EC, DSA, OpenSSH, PGP), at the start of a line as
 * in a key file; a parser's source quoting the marker ('-----BEGIN ...') does not count.
 */
const PEM_PRIVATE_KEY = /^-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/m;
const PUTTY_KEY = /^PuTTY-User-Key-File-\d+:/m;
/** OpenSSH's default names for private keys (their `.pub` halves are public). */
const SSH_KEY_NAME = /^id_(?:rsa|dsa|ecdsa|ed25519|ecdsa_sk|ed25519_sk|xmss)$/;

export interface ContextSecret {
  /** Relative to the context. */
  file: string;
  what: string;
}

/** A finding from the file's name alone (no read needed), or null. */
export function secretByName(relative: string): ContextSecret | null {
  const name = relative.slice(relative.lastIndexOf('/') + 1);
  return SSH_KEY_NAME.test(name) ? { file: relative, what: `an SSH private key (named ${name})` } : null;
}

/** A finding from the first SNIFF_BYTES of the file, or null. */
export function secretInHead(relative: string, head: string): ContextSecret | null {
  const pem = PEM_PRIVATE_KEY.exec(head);
  // the marker without its dashes: messages pass through src/util/redact.ts, which masks a PEM block to the end
  if (pem) return { file: relative, what: `a private key (${pem[0].replace(/^-+|-+$/g, '')})` };
  if (PUTTY_KEY.test(head)) return { file: relative, what: 'a private key (PuTTY)' };
  if (head.startsWith(SECRETS_FILE_MARK)) return { file: relative, what: "a copy of depl's secrets file" };
  return null;
}

/** The refusal for a context holding secrets: every file named at once, and how to fix each. */
export function contextSecretsRefusal(label: string, contextDir: string, found: readonly ContextSecret[]): { message: string; hint: string } {
  const shown = found.slice(0, 10);
  const more = found.length > shown.length ? `\n  ... and ${found.length - shown.length} more` : '';
  return {
    message: `${label} (${contextDir}) holds ${found.length === 1 ? 'a file' : `${found.length} files`} that must not be sent to the image builder:\n`
      + shown.map((s) => `  ${s.file}: ${s.what}`).join('\n') + more,
    hint: `Nothing was built. Add ${found.length === 1 ? 'it' : 'each'} to ${path.join(contextDir, '.dockerignore')} (e.g. a line "${shown[0]?.file ?? ''}"), `
      + 'or move it out of the build context: an image keeps every file COPY puts in it, for anyone who can pull it.',
  };
}
