/**
 * The project files depl.yaml mounts into services (`files:`, from compose's configs: and read-only binds): which
 * sources may be mounted, and where each file under a folder lands. Pure; src/apply/project-files.ts reads them.
 */

/** Swarm refuses a config larger than this (the Engine API's limit for config data). */
export const MAX_CONFIG_BYTES = 500 * 1024;

/**
 * A source relative to the project folder, normalised (`./conf/` -> `conf`), or the reason it cannot be one: a
 * path outside the project would mount the machine's own files (`/`, the Docker socket, /etc), which a
 * deploy to other machines cannot carry and must not expose.
 */
export function projectSource(source: string): { ok: true; path: string } | { ok: false; reason: string } {
  if (/(^|\/)docker\.sock$/.test(source)) {
    return { ok: false, reason: `"${source}" is the Docker socket: it would give the container root on the node, and through the swarm on every node` };
  }
  if (source.startsWith('/') || source.startsWith('~')) {
    return { ok: false, reason: `"${source}" is a path on this machine, outside the project: its files would not exist on the cluster's nodes, and a host path (/, /etc, the Docker socket) would hand the container the node itself` };
  }
  const parts: string[] = [];
  for (const part of source.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) return { ok: false, reason: `"${source}" climbs out of the project folder; only files inside it are carried to the cluster` };
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  return { ok: true, path: parts.length === 0 ? '.' : parts.join('/') };
}

/** A file found under a mounted folder, relative to that folder, lands at the same relative path under the target. */
export function targetUnder(target: string, relative: string): string {
  return `${target.replace(/\/+$/, '')}/${relative}`;
}
