import { posix } from 'node:path';
import { OperationError, UserError } from '../../errors.js';
import { claimEdgeHosts, EDGE_APPS_CHANGED, edgeAppsPath, edgeAppsWriteLine, parseEdgeApps, releaseEdgeHosts, type EdgeApp, type EdgeClaim } from '../../plan/edge-apps.js';
import { quote } from '../../plan/shell.js';
import type { Remote } from '../remote.js';

/**
 * The cluster edge's app list on the manager (src/plan/edge-apps.ts): read, and changed by compare-and-set under
 * flock, since it is the one file two apps' commands (each under its own app's lock) both write.
 */
export async function readEdgeApps(manager: Remote, root?: string): Promise<{ text: string | null; apps: EdgeApp[] }> {
  const text = await manager.readFile(edgeAppsPath(root));
  return { text, apps: parseEdgeApps(text) };
}

/** Writes `text` if the file is still `read`; false when another app's command changed it meanwhile. */
async function writeIfUnchanged(manager: Remote, root: string | undefined, text: string, read: string | null): Promise<boolean> {
  const file = edgeAppsPath(root);
  const folder = posix.dirname(file);
  const result = await manager.shell(`mkdir -p ${quote(folder)} && ${edgeAppsWriteLine(file, read)}`, { stdin: text, check: false });
  if (result.code === EDGE_APPS_CHANGED) return false;
  if (result.code !== 0) throw new OperationError(`${manager.name}: writing ${file} failed (exit ${result.code}): ${result.stderr.trim()}`, undefined, 'REMOTE_COMMAND_FAILED');
  return true;
}

/** How many times a claim is planned again after another app changed the list between its read and its write. */
const CLAIM_ATTEMPTS = 5;

/**
 * App `app` claims `domain` on the cluster's edge: read, planned (claimEdgeHosts: HOST_TAKEN when another app
 * answers one of its hosts), written only if unchanged since the read; planned again on a fresh read otherwise.
 * Returns the domain the app claimed before (null: none), which is what an undo puts back.
 */
export async function claimEdgeApp(manager: Remote, root: string | undefined, app: string, domain: string): Promise<{ before: string | null }> {
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    const { text, apps } = await readEdgeApps(manager, root);
    const before = apps.find((a) => a.app === app)?.domain ?? null;
    const claim = claimEdgeHosts(apps, app, domain);
    if (!claim.ok) throw new UserError(claim.refusal.message, claim.refusal.hint, claim.refusal.code);
    if (!claim.changed || (await writeIfUnchanged(manager, root, claim.text, text))) return { before };
  }
  throw new OperationError(`the edge's app list changed ${CLAIM_ATTEMPTS} times while app ${app} claimed ${domain}: other apps' commands keep writing it`, 'Run the command again.', 'EDGE_APPS_BUSY');
}

/** Takes app `app`'s claim off the list (or puts its earlier domain back), by the same compare-and-set. */
export async function releaseEdgeApp(manager: Remote, root: string | undefined, app: string, restore: string | null = null): Promise<void> {
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    const { text, apps } = await readEdgeApps(manager, root);
    const next: EdgeClaim = restore === null ? { ok: true, ...releaseEdgeHosts(apps, app) } : claimEdgeHosts(apps, app, restore);
    if (!next.ok) throw new UserError(next.refusal.message, next.refusal.hint, next.refusal.code);
    if (!next.changed || (await writeIfUnchanged(manager, root, next.text, text))) return;
  }
  throw new OperationError(`the edge's app list changed ${CLAIM_ATTEMPTS} times while app ${app}'s claim was taken back`, 'Run the command again.', 'EDGE_APPS_BUSY');
}
