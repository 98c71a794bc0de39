/** How depl composes the names it makes from validated parts; the checks themselves are in src/names.ts. */
import { createHash } from 'node:crypto';
import { checkVersionLabel } from '../names.js';

/** Default version id: the UTC time of the build, `20261122-130512`. Time is passed in: plan/ has no clock. */
export function versionFromTime(now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${now.getUTCFullYear()}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}-` +
    `${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}${pad(now.getUTCSeconds())}`;
}

/**
 * A branch name made label-like: `feature/Login_Page` -> `feature-login-page`, at most `max` characters.
 * Returns null when nothing label-like is left, so the caller can reject it with the original name.
 */
export function branchSlug(branch: string, max = 40): string | null {
  const slug = branch
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/g, '');
  return slug.length > 0 && checkVersionLabel(slug).ok ? slug : null;
}

/** Characters of the branch name's SHA-256 that end a slugged label: 24 bits, and the label stays short. */
export const BRANCH_HASH_LENGTH = 6;

/**
 * The version label of a per-branch staging deploy, the same for the same branch every time (so a push finds
 * and redeploys it), and distinct for branches that slug alike (`feature/x`, `feature-x`, `Feature_X`):
 * - a branch name that already is a version label (lower-case letters, digits and `-`, at most 40) is its label:
 *   `main`, `feature-x`;
 * - any other name is slugged to at most 33 characters and ends with `-` and the first 6 hex digits of the
 *   SHA-256 of the name as given: `feature/x` -> `feature-x-<6 hex>`. Slugging loses what made two names differ;
 *   the hash keeps it, and the label stays one DNS label of at most 40 characters.
 * Returns null when the name has nothing label-like in it.
 */
export function branchLabel(branch: string): string | null {
  if (checkVersionLabel(branch).ok) return branch;
  const slug = branchSlug(branch, 40 - BRANCH_HASH_LENGTH - 1);
  if (slug === null) return null;
  return `${slug}-${createHash('sha256').update(branch).digest('hex').slice(0, BRANCH_HASH_LENGTH)}`;
}

export function serviceName(app: string, version: string, service: string): string {
  return `${app}-${version}-${service}`;
}

/**
 * The version's own overlay network: its services join it with their depl.yaml names as aliases, so `backend`
 * (as compose names it) resolves to this version's backend and never another version's.
 */
export function versionNetworkName(app: string, version: string): string {
  return `${app}-${version}-net`;
}

export function versionHost(version: string, domain: string): string {
  return `${version}.${domain}`;
}

/*
 * Every name depl gives a thing on the cluster carries the app's name, so several apps (each with its own
 * depl.yaml) share one swarm without taking each other's names; every query for them filters by depl.app too.
 */

/** The app's overlay network, made by node-up: the edge, the accessories and every version's services are on it. */
export function appNetworkName(app: string): string {
  return `${app}-net`;
}

/**
 * An accessory's swarm service, `<app>-<accessory>`: two apps' `redis` never collide. Its own name stays an alias
 * on the app's network (accessoryAliases), so `redis://redis:6379` still reaches the app's Redis and no other's.
 */
export function accessoryServiceName(app: string, accessory: string): string {
  return `${app}-${accessory}`;
}

/**
 * The name an accessory's service had before names were app-scoped (the accessory's name alone): what buildinst
 * looks for to move an existing accessory to its app-scoped name (src/plan/accessory-rename.ts).
 */
export function legacyAccessoryServiceName(accessory: string): string {
  return accessory;
}

/** The names an accessory answers to on the app's network: its own name, then the ones depl.yaml adds. */
export function accessoryAliases(accessory: string, extra: readonly string[]): string[] {
  return [accessory, ...extra.filter((alias) => alias !== accessory)];
}

export function edgeServiceName(app: string): string {
  return `${app}-edge`;
}

export function renewerServiceName(app: string): string {
  return `${app}-tls-renewer`;
}

/** The app's folder on the manager (release state, lock, intents, edge files, certificates), under depl's root. */
export function appStateDir(app: string, root = '/var/lib/depl'): string {
  return `${root}/${app}`;
}


/**
 * A named volume of depl.yaml (`redis-data:/data`) on the cluster: `<app>-<volume>`, so two apps' `redis-data`
 * are two volumes. One an earlier depl made under the unscoped name is moved into it by buildinst (src/plan/volume-move.ts).
 */
export function appVolumeName(app: string, volume: string): string {
  return `${app}-${volume}`;
}

/** The name a volume had before volume names were app-scoped, depl.yaml's name alone: what buildinst moves out of. */
export function legacyVolumeName(volume: string): string {
  return volume;
}

/** The swarm volume of a depl.yaml volume: from `names` (src/plan/volume-names.ts) when given, else app-scoped. */
export function volumeNameOf(app: string, volume: string, names?: Readonly<Record<string, string>>): string {
  return names?.[volume] ?? appVolumeName(app, volume);
}
