import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { contextWithinOperatorPath } from '../plan/build-context.js';
import { backupFilePattern, operatorPaths, type ProjectFacts } from '../plan/operator-files.js';
import { MAX_CONFIG_BYTES, projectSource, targetUnder } from '../plan/project-files.js';
import type { ProjectFile } from '../plan/services.js';

/**
 * Reads every file depl.yaml's `files:` mounts (services and accessories), before anything on the cluster
 * changes: a folder is every regular file under it, each mounted at the same relative path under the target.
 * A symlink is refused rather than followed: it may point out of the project.
 */
/** What readProjectFiles reads: the project folder, depl's own files in it, and each owner's `files:`. */
export interface ProjectFilesSource {
  root: string;
  facts: ProjectFacts;
  /** Services and accessories with their `files:` (target -> source relative to root). */
  owners: readonly (readonly [string, Record<string, string>])[];
}

export async function readProjectFiles(source: ProjectFilesSource): Promise<ProjectFile[]> {
  const out: ProjectFile[] = [];
  // depl's own files (.depl/, depl.yaml, the SSH key, backups...) never become swarm configs, which anyone who
  // can reach the swarm can read: a folder mounted whole leaves them out, as a build context does
  const project = source.facts;
  const operator = operatorPaths(project);
  const backups = backupFilePattern(project.app, project.accessories);
  const isOperatorFile = (file: string) => contextWithinOperatorPath(file, operator) !== null || (backups?.test(path.basename(file)) ?? false);
  for (const [owner, files] of source.owners) {
    for (const [target, from] of Object.entries(files)) {
      const where = `${owner}.files["${target}"]`;
      const checked = projectSource(from);
      if (!checked.ok) throw new UserError(`${where}: ${checked.reason}`, 'Copy the file into the project folder and name it relative to depl.yaml.', 'PROJECT_FILE_OUTSIDE');
      const absolute = path.join(source.root, checked.path);
      const stats = await lstat(absolute).catch(() => null);
      if (stats === null) throw new UserError(`${where}: no file or folder at ${absolute}`, 'Paths under files: are relative to depl.yaml\'s folder.', 'PROJECT_FILE_MISSING');
      if (isOperatorFile(absolute)) {
        throw new UserError(`${where}: ${absolute} is one of depl's own files (the cluster's key, secrets, config or backups)`, 'Mount a file of the app instead; depl never hands its own files to a service.', 'PROJECT_FILE_OPERATOR');
      }
      if (stats.isDirectory()) {
        for (const relative of await filesUnder(absolute, where, isOperatorFile)) out.push(await fileAt(owner, targetUnder(target, relative), path.join(absolute, relative), where));
      } else if (stats.isFile()) {
        out.push(await fileAt(owner, target, absolute, where));
      } else {
        throw new UserError(`${where}: ${absolute} is neither a regular file nor a folder`, 'Name a file or a folder of files inside the project.', 'PROJECT_FILE_KIND');
      }
    }
  }
  return out;
}

async function fileAt(owner: string, target: string, file: string, where: string): Promise<ProjectFile> {
  const data = await readFile(file);
  if (data.length > MAX_CONFIG_BYTES) {
    throw new UserError(`${where}: ${file} is ${data.length} bytes; a swarm config holds at most ${MAX_CONFIG_BYTES}`, 'Put large files into the image (COPY in the Dockerfile) or a volume instead.', 'PROJECT_FILE_TOO_LARGE');
  }
  return { owner, target, data };
}

/** The regular files under `dir`, relative to it; `skip`ped paths (depl's own files) are neither listed nor entered. */
async function filesUnder(dir: string, where: string, skip: (file: string) => boolean, prefix = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of (await readdir(path.join(dir, prefix), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const relative = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (skip(path.join(dir, relative))) continue;
    if (entry.isDirectory()) found.push(...await filesUnder(dir, where, skip, relative));
    else if (entry.isFile()) found.push(relative);
    else throw new UserError(`${where}: ${path.join(dir, relative)} is a symlink or special file`, 'Replace it with the file itself: a link may point out of the project.', 'PROJECT_FILE_KIND');
  }
  return found;
}
