import * as z from 'zod';
import { parseJsonDocument } from './json-document.js';
import type { InstalledVersion, ReleaseState } from './release-state.js';

/**
 * What a buildinst is creating, written on the manager before its first service is created and removed once the
 * version is in (or was taken out again after a failure). A buildinst killed in between (SIGKILL, a lost
 * connection, the operator's machine gone) leaves it behind; the next depl command that takes the lock sees it
 * and removes the half-made version, so `depl versions` never lists a version whose buildinst never finished.
 * A branch redeploy is the exception: the version was there before and served, so its services are put back
 * as they were (`replaced`) rather than removed.
 */

/** A service as it was before a redeploy updated it: its swarm spec as inspected, its image pinned (pinnedSpec). */
const serviceRestoreSchema = z.object({ name: z.string(), spec: z.record(z.string(), z.unknown()) });
export type ServiceRestore = z.infer<typeof serviceRestoreSchema>;

const installIntentSchema = z.object({
  schema: z.literal(1),
  app: z.string(),
  version: z.string(),
  command: z.string(),
  by: z.string(),
  at: z.string(),
  pid: z.number().int().optional(),
  /** The services the buildinst creates (or updates, for a branch redeploy). */
  services: z.array(z.string()),
  /** The version was installed before (a branch redeploy): its services were being replaced in place. */
  redeploy: z.boolean(),
  /**
   * A redeploy: the services it updates in place, each with the spec it had before. Absent in intents written by
   * a depl that did not record them (their repair can only report).
   */
  replaced: z.array(serviceRestoreSchema).optional(),
  /**
   * Other versions' stateful services the install stops to take their volume over (src/plan/install-plan.ts
   * statefulTakeover), with the replicas they ran: a repair that removes the half-made version starts them again.
   */
  stopped: z.array(z.object({ name: z.string(), version: z.string(), replicas: z.number().int().min(0) })).optional(),
});

export type InstallIntent = z.infer<typeof installIntentSchema>;

export function installIntentPath(app: string, root: string): string {
  return `${root}/${app}/installing.json`;
}

export function parseInstallIntent(text: string): { ok: true; intent: InstallIntent } | { ok: false; problem: string } {
  const parsed = parseJsonDocument(installIntentSchema, text);
  return parsed.ok ? { ok: true, intent: parsed.value } : parsed;
}

export function renderInstallIntent(intent: InstallIntent): string {
  return JSON.stringify(installIntentSchema.parse(intent), null, 2) + '\n';
}

export type InstallRepair =
  /**
   * Take the version off the edge (when it is routed), remove its services, start again the stateful services
   * it stopped (`restart`), then forget the intent.
   */
  | { action: 'remove'; version: string; services: string[]; fromEdge: boolean; restart: { service: string; replicas: number }[]; why: string }
  /** A redeploy: put the services it updated back to their earlier specs, remove those it created; the edge stays. */
  | { action: 'restore'; version: string; restore: ServiceRestore[]; remove: string[]; why: string }
  /** The version serves live traffic (or is the rollback target), or cannot be put back: nothing is removed. */
  | { action: 'keep'; version: string; why: string };

/**
 * The repair of an interrupted buildinst, from the intent and what the swarm and the release state say now.
 * Everything labelled with the version goes, not only the services the intent names: the ones it names may not
 * all exist yet, and nothing else creates services for a version that is being installed. A redeploy's version
 * was there before and stays: what it replaced is put back, what it added goes.
 */
export function planInstallRepair(intent: InstallIntent, installed: readonly InstalledVersion[], state: ReleaseState): InstallRepair {
  const { version } = intent;
  const interrupted = `an interrupted \`${intent.command}\` (${intent.by}, ${intent.at})`;
  const role = state.live === version ? 'live' : state.canary?.version === version ? 'the canary' : state.previous === version ? 'the previous version' : null;
  if (role !== null) {
    return { action: 'keep', version, why: `${interrupted} named version ${version}, which is ${role}; it stays` };
  }
  if (intent.redeploy) {
    if (intent.replaced === undefined) {
      return {
        action: 'keep', version,
        why: `${interrupted} was redeploying version ${version} and never finished; its services stay as they are (this intent does not say what they were): run that command again`,
      };
    }
    const restore = intent.replaced;
    const remove = intent.services.filter((s) => !restore.some((r) => r.name === s)).sort();
    return {
      action: 'restore', version, restore, remove,
      why: `${interrupted} was redeploying version ${version} and never finished; putting back its earlier deploy (${restore.map((r) => r.name).join(', ') || 'no services'})` +
        (remove.length > 0 ? ` and removing what it added (${remove.join(', ')})` : ''),
    };
  }
  const listed = installed.find((v) => v.label === version);
  const services = [...new Set([...intent.services, ...(listed?.services ?? [])])].sort();
  const restart = (intent.stopped ?? []).map((s) => ({ service: s.name, replicas: s.replicas }));
  return {
    action: 'remove',
    version,
    services,
    fromEdge: listed !== undefined,
    restart,
    why: `${interrupted} was installing version ${version} and never finished; removing it (${services.join(', ') || 'no services'})` +
      (restart.length > 0 ? ` and starting again what it stopped to take its volume over (${restart.map((r) => r.service).join(', ')})` : ''),
  };
}

