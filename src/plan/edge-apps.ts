import { createHash } from 'node:crypto';
import { UserError } from '../errors.js';
import type { ErrorCode } from '../error-codes.js';
import { checkAppName, checkDomainName } from '../names.js';
import { shellLine, type Argv } from './shell.js';

/**
 * Which apps the cluster's one edge routes, and the hosts each claims (docs/ARCHITECTURE.md, "The edge: one per
 * cluster"). Each app writes its own routing table (edge-routing.ts) under its own lock; this small file is the
 * only thing two apps share, so it is where a host is claimed once. The edge's Lua reads only the tables it lists
 * and routes a table only at the domain its app claimed here, so an app cannot take another's traffic by writing
 * a table. A plain line format, like the routing table, ending in `end` so a torn file is recognisable:
 *
 *   depl-edge-apps 1
 *   app gitea git.lab.example.org
 *   app shop shop.example.org
 *   end
 */
export const EDGE_APPS_FORMAT = 'depl-edge-apps 1';

/** The cluster edge's folder on the manager, beside the apps' folders: `_` keeps it out of every app name (a DNS label). */
export function clusterEdgeDir(root = '/var/lib/depl'): string {
  return `${root}/_edge`;
}

/** The app list: which apps the cluster's edge routes, at which domains. */
export function edgeAppsPath(root?: string): string {
  return `${clusterEdgeDir(root)}/apps`;
}

export interface EdgeApp {
  app: string;
  domain: string;
}

/** An app claims its domain (live) and every host one label under it (its versions: `<label>.<domain>`). */
export function hostsClaimed(domain: string): string[] {
  return [domain, `*.${domain}`];
}

export function renderEdgeApps(apps: readonly EdgeApp[]): string {
  const sorted = [...apps].sort((a, b) => a.app.localeCompare(b.app));
  for (const { app, domain } of sorted) assertEdgeApp(app, domain);
  return [EDGE_APPS_FORMAT, ...sorted.map(({ app, domain }) => `app ${app} ${domain}`), 'end', ''].join('\n');
}

/** The apps the file lists; null for no file. A file that is not one (torn, or another format) is refused: nothing is claimed over it. */
export function parseEdgeApps(text: string | null): EdgeApp[] {
  if (text === null) return [];
  const lines = text.split('\n').filter((line) => line !== '');
  if (lines[0] !== EDGE_APPS_FORMAT || lines[lines.length - 1] !== 'end') {
    throw new UserError(`the edge's app list is not a "${EDGE_APPS_FORMAT}" file ending in "end" (torn, or written by another depl)`, 'Look at it on the manager; the next buildinst of any app writes it again from what it can read.', 'EDGE_APPS_INVALID');
  }
  return lines.slice(1, -1).map((line) => {
    const match = /^app (\S+) (\S+)$/.exec(line);
    if (match === null) throw new UserError(`the edge's app list has a line it cannot read: "${line.slice(0, 80)}"`, undefined, 'EDGE_APPS_INVALID');
    assertEdgeApp(match[1]!, match[2]!);
    return { app: match[1]!, domain: match[2]! };
  });
}

/** The host two domains both answer, if any: the same domain, or one is a version host (`<label>.<domain>`) of the other. */
export function sharedHost(a: string, b: string): string | null {
  if (a === b) return a;
  const oneLabelUnder = (inner: string, outer: string) => inner.endsWith(`.${outer}`) && !inner.slice(0, -outer.length - 1).includes('.');
  if (oneLabelUnder(a, b)) return a;
  if (oneLabelUnder(b, a)) return b;
  return null;
}

export type EdgeClaim =
  | { ok: true; apps: EdgeApp[]; text: string; changed: boolean }
  | { ok: false; refusal: { message: string; hint: string; code: ErrorCode } };

/**
 * App `app` routed at `domain` on the edge whose app list is `current`: the list with its claim (a changed domain
 * replaces its earlier claim), or a refusal naming both apps and the host when another app answers that host.
 */
export function claimEdgeHosts(current: readonly EdgeApp[], app: string, domain: string): EdgeClaim {
  assertEdgeApp(app, domain);
  for (const other of current) {
    if (other.app === app) continue;
    const host = sharedHost(domain, other.domain);
    if (host === null) continue;
    const whose = (d: string) => (d === host ? 'its domain' : `a version host of its domain ${d}`);
    return {
      ok: false,
      refusal: {
        message: `host ${host} is claimed by two apps on this cluster's edge: app ${other.app} (${whose(other.domain)}) and app ${app} (${whose(domain)}); the edge routes a host to one app`,
        hint: `Give app ${app} a domain of its own in depl.yaml (domain:), one that is neither ${other.domain} nor a single label under it, nor a domain that ${other.domain} is a single label under.`,
        code: 'HOST_TAKEN',
      },
    };
  }
  const mine = current.find((a) => a.app === app);
  const apps = [...current.filter((a) => a.app !== app), { app, domain }];
  return { ok: true, apps, text: renderEdgeApps(apps), changed: mine?.domain !== domain };
}

/** The list without `app` (the app is removed from the cluster): the edge stops routing its hosts, the others keep theirs. */
export function releaseEdgeHosts(current: readonly EdgeApp[], app: string): { apps: EdgeApp[]; text: string; changed: boolean } {
  const apps = current.filter((a) => a.app !== app);
  return { apps, text: renderEdgeApps(apps), changed: apps.length !== current.length };
}

/** Exit code of edgeAppsWriteCommand when the file changed since it was read (another app claimed a host meanwhile). */
export const EDGE_APPS_CHANGED = 3;

/**
 * Writes the app list (stdin) at `file` only if it is still what was read (`read`, null for no file): compared by
 * its SHA-256 under `flock` on a lock file beside it, so two apps' commands (each under its own app's lock only)
 * cannot both claim a host. Exits EDGE_APPS_CHANGED when it changed; the caller reads and plans again.
 */
export function edgeAppsWriteCommand(file: string, read: string | null): Argv {
  const expected = read === null ? '' : createHash('sha256').update(read).digest('hex');
  const script = [
    'now=$(sha256sum < "$1" 2>/dev/null | cut -d" " -f1)',
    `[ "$now" = "$2" ] || exit ${EDGE_APPS_CHANGED}`,
    'cat > "$1.next" && mv -f "$1.next" "$1"',
  ].join('\n');
  return ['flock', `${file}.lock`, 'sh', '-c', script, 'depl-edge-apps', file, expected];
}

/** The same as a shell line (for a `Remote.shell` with the list on stdin). */
export function edgeAppsWriteLine(file: string, read: string | null): string {
  return shellLine(edgeAppsWriteCommand(file, read));
}

function assertEdgeApp(app: string, domain: string): void {
  const name = checkAppName(app);
  if (!name.ok) throw new UserError(`app name "${app}" in the edge's app list ${name.reason}`, undefined, 'EDGE_APPS_INVALID');
  const host = checkDomainName(domain);
  if (!host.ok) throw new UserError(`domain "${domain}" of app ${app} in the edge's app list ${host.reason}`, undefined, 'EDGE_APPS_INVALID');
}
