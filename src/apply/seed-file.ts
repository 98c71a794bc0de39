import { createReadStream } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import path from 'node:path';
import type { DeplConfig } from '../config/schema.js';
import { UserError } from '../errors.js';
import { secretByName, secretInHead, SNIFF_BYTES } from '../plan/build-context.js';
import { BACKUPS_FOLDER, operatorPaths, type ProjectFacts } from '../plan/operator-files.js';
import { projectSource } from '../plan/project-files.js';
import { quote } from '../plan/shell.js';
import type { Remote } from './remote.js';

/** The accessories depl.yaml declares (their `seed:`), and the project's facts: its folder and depl's own files in it. */
export interface SeedFileSource {
  accessories: DeplConfig['accessories'];
  facts: ProjectFacts;
}

/**
 * `seed: { file }` of perBranch accessories (src/plan/branch-database.ts): checked before the cluster is reached
 * (a file of the project, a regular file, none of depl's own files but the backups prune writes, no private key
 * or copy of the secrets file), then streamed to the manager for the create job and removed after it.
 * Returns accessory -> absolute path.
 */
export async function checkSeedFiles(source: SeedFileSource): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const { facts } = source;
  const backups = path.resolve(facts.root, BACKUPS_FOLDER);
  const operator = operatorPaths(facts);
  for (const [name, accessory] of Object.entries(source.accessories)) {
    const seed = accessory.seed;
    if (seed === undefined || seed === 'schema') continue;
    const where = `accessories.${name}.seed.file`;
    const refuse = (message: string, hint: string) => new UserError(`${where}: ${message}`, hint, 'BRANCH_SEED_FILE');
    const checked = projectSource(seed.file);
    if (!checked.ok) throw refuse(checked.reason, 'Copy the dump into the project folder (such as .depl/backups/) and name it relative to depl.yaml.');
    const absolute = path.join(facts.root, checked.path);
    const within = (folder: string) => absolute === folder || absolute.startsWith(`${folder}${path.sep}`);
    if (!within(backups) && operator.some(within)) {
      throw refuse(`${absolute} is one of depl's own files (the cluster's key, secrets, config or credentials)`, `Seed from a dump: one prune wrote under ${BACKUPS_FOLDER}/, or a file of the app.`);
    }
    const stats = await lstat(absolute).catch(() => null);
    if (stats === null) throw refuse(`no file at ${absolute}`, `The path is relative to depl.yaml's folder; prune writes branch dumps under ${BACKUPS_FOLDER}/.`);
    if (!stats.isFile()) throw refuse(`${absolute} is not a regular file (a folder, a symlink or a special file)`, 'Name the dump file itself: a link may point out of the project.');
    const head = await readHead(absolute);
    const secret = secretByName(checked.path) ?? secretInHead(checked.path, head);
    if (secret !== null) throw refuse(`${absolute} looks like a secret (${secret.what}), not a database dump`, 'Name a dump made by pg_dump, mysqldump or depl prune.');
    out[name] = absolute;
  }
  return out;
}

async function readHead(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    return buffer.subarray(0, bytesRead).toString('latin1');
  } finally {
    await handle.close();
  }
}

/**
 * Streams the file to `to` on the manager (a fenced write when the remote is the lock holder's): written beside
 * and renamed, 0644 in a 0700 folder, so only root on the manager and the job's container (its bind mount) read it.
 */
export async function uploadSeedFile(remote: Remote, from: string, to: string): Promise<void> {
  const dir = path.posix.dirname(to);
  const temp = `${to}.partial`;
  await remote.shell(`mkdir -p ${quote(dir)} && chmod 700 ${quote(dir)} && cat > ${quote(temp)} && chmod 644 ${quote(temp)} && mv -f ${quote(temp)} ${quote(to)}`, { stdin: createReadStream(from) });
}

export async function removeSeedFile(remote: Remote, to: string): Promise<void> {
  await remote.shell(`rm -f ${quote(to)} ${quote(`${to}.partial`)}`);
}
