import path from 'node:path';
import { ANSIBLE_INVENTORY, CLOUD_CREDENTIAL_FILES, DEPL_FOLDER } from './operator-files.js';

/**
 * The lines `depl init` adds to a build context's .dockerignore. depl leaves these files out of what it sends
 * whatever .dockerignore says (src/plan/build-context.ts); the lines make a `docker build` run by hand in the
 * same folder agree, and tell a reader of the file why they are there.
 */

export const DOCKERIGNORE_MARK = "# Added by depl init: the operator's files (the cluster's SSH key, secrets, backups, depl's config) never go into an image.";

/**
 * The lines for a context, relative to it: null when depl.yaml's folder is not inside the context (then none of
 * depl's files are either).
 */
export function deplIgnoreLines(contextDir: string, root: string, configFile: string): string[] | null {
  const toRoot = path.relative(contextDir, root);
  if (toRoot === '..' || toRoot.startsWith(`..${path.sep}`) || path.isAbsolute(toRoot)) return null;
  const prefix = toRoot === '' ? '' : `${toRoot.split(path.sep).join('/')}/`;
  const config = path.relative(root, configFile).split(path.sep).join('/');
  const relative = [DEPL_FOLDER, config, ANSIBLE_INVENTORY, ...CLOUD_CREDENTIAL_FILES.filter((f) => f.endsWith('.yaml'))];
  return relative.map((file) => `${prefix}${file}`);
}

/**
 * The .dockerignore with depl's lines added after the user's (under DOCKERIGNORE_MARK), or null when every line
 * is there already: running init again changes nothing, and the user's own lines are never touched.
 */
export function withDeplIgnores(existing: string | null, lines: readonly string[]): string | null {
  const present = new Set((existing ?? '').split('\n').map((line) => line.trim().replace(/^\/+|\/+$/g, '')));
  const missing = lines.filter((line) => !present.has(line));
  if (missing.length === 0) return null;
  const before = existing === null || existing.trim() === '' ? '' : `${existing.replace(/\n*$/, '')}\n\n`;
  return `${before}${DOCKERIGNORE_MARK}\n${missing.join('\n')}\n`;
}
