import path from 'node:path';
import type { DeplConfig } from '../config/schema.js';

/**
 * The files depl keeps for the operator in the project folder (depl.yaml's folder): the cluster's SSH key,
 * the secrets file, host keys, the inventory, hooks, backups and restore safety copies under `.depl/`, the
 * config file itself, the generated Ansible inventory, and the OpenStack credentials depl reads from there.
 * None of them belongs in an image (src/plan/build-context.ts keeps them out of every build context).
 */

/** Relative to depl.yaml's folder: the operator's own folder (0700, git-ignored). */
export const DEPL_FOLDER = '.depl';

/** Where `depl backup` writes by default and restore keeps its safety copies, relative to depl.yaml's folder. */
export const BACKUPS_FOLDER = `${DEPL_FOLDER}/backups`;

/** Written by node-up for `bootstrap: ansible`, relative to depl.yaml's folder. */
export const ANSIBLE_INVENTORY = 'ansible/generated_hosts.ini';

/** clouds.yaml and secure.yaml, which depl looks for beside depl.yaml (src/config/clouds.ts): credentials. */
export const CLOUD_CREDENTIAL_FILES = ['clouds.yaml', 'clouds.yml', 'clouds.json', 'secure.yaml', 'secure.yml', 'secure.json'];

export interface ProjectFacts {
  /** depl.yaml's folder, absolute. */
  root: string;
  /** The config file that was loaded (any name, anywhere: --config), absolute. */
  configFile: string;
  /** ssh.key resolved against root (it may live outside .depl/). */
  sshKey: string;
  /** tls: files' certificate and key, resolved against root. */
  tlsFiles: string[];
  app: string;
  accessories: string[];
}

/** The facts of a loaded depl.yaml (config, its file and folder) that say where the operator's files are. */
export function projectFacts(loaded: { config: DeplConfig; file: string; root: string }): ProjectFacts {
  const { config, root } = loaded;
  const tls = config.tls?.mode === 'files' ? [config.tls.cert, config.tls.key] : [];
  return {
    root,
    configFile: loaded.file,
    sshKey: path.resolve(root, config.ssh.key),
    tlsFiles: tls.map((file) => path.resolve(root, file)),
    app: config.app,
    accessories: Object.keys(config.accessories),
  };
}

/** Absolute paths of the operator's files and folders (a folder stands for everything under it). */
export function operatorPaths(project: ProjectFacts): string[] {
  const at = (relative: string) => path.resolve(project.root, relative);
  return [...new Set([
    at(DEPL_FOLDER),
    path.resolve(project.configFile),
    path.resolve(project.sshKey),
    `${path.resolve(project.sshKey)}.pub`,
    at(ANSIBLE_INVENTORY),
    ...CLOUD_CREDENTIAL_FILES.map(at),
    ...project.tlsFiles.map((file) => path.resolve(file)),
  ])];
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The names depl's backup files get (src/plan/backup.ts: defaultBackupFileName, restore's `-before-restore`
 * copies, the temporary names while one is written). Before backups went to `.depl/backups/`, `depl backup`
 * wrote them into the working folder, which is usually the project folder: they are matched wherever they are.
 */
export function backupFilePattern(app: string, accessories: readonly string[]): RegExp | null {
  if (accessories.length === 0) return null;
  return new RegExp(`^${escape(app)}-(${accessories.map(escape).join('|')})-\\d{8}-\\d{6}(-before-restore)?(-\\d+)?\\.tar(\\.(part|tmp)-\\d+)?$`);
}
