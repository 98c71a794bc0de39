import { z } from 'zod';
import type { Argv } from './shell.js';
import type { InstalledVersion, ReleaseState } from './release-state.js';

/**
 * What a buildinst is creating, written on the manager before its first service is created and removed once the
 * version is in (or was taken out again after a failure). A buildinst killed in between (SIGKILL, a lost
 * connection, the operator's machine gone) leaves it behind; the next depl command that takes the lock sees it
 * and removes the half-made version, so `depl versions` never lists a version whose buildinst never finished.
 */
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
});

export type InstallIntent = z.infer<typeof installIntentSchema>;

export function installIntentPath(app: string, root: string): string {
  return `${root}/${app}/installing.json`;
}

export function parseInstallIntent(text: string): { ok: true; intent: InstallIntent } | { ok: false; problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not JSON' };
  }
  const parsed = installIntentSchema.safeParse(value);
  if (!parsed.success) return { ok: false, problem: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
  return { ok: true, intent: parsed.data };
}

export function renderInstallIntent(intent: InstallIntent): string {
  return JSON.stringify(installIntentSchema.parse(intent), null, 2) + '\n';
}

export type InstallRepair =
  /** Take the version off the edge (when it is routed), remove its services, then forget the intent. */
  | { action: 'remove'; version: string; services: string[]; fromEdge: boolean; why: string }
  /** The version serves live traffic (or is the rollback target): nothing is removed, the intent is dropped. */
  | { action: 'keep'; version: string; why: string };

/**
 * The repair of an interrupted buildinst, from the intent and what the swarm and the release state say now.
 * Everything labelled with the version goes, not only the services the intent names: the ones it names may not
 * all exist yet, and nothing else creates services for a version that is being installed.
 */
export function planInstallRepair(intent: InstallIntent, installed: readonly InstalledVersion[], state: ReleaseState): InstallRepair {
  const { version } = intent;
  const role = state.live === version ? 'live' : state.canary?.version === version ? 'the canary' : state.previous === version ? 'the previous version' : null;
  if (role !== null) {
    return { action: 'keep', version, why: `an interrupted \`${intent.command}\` (${intent.by}, ${intent.at}) named version ${version}, which is ${role}; it stays` };
  }
  const listed = installed.find((v) => v.label === version);
  const services = [...new Set([...intent.services, ...(listed?.services ?? [])])].sort();
  const what = intent.redeploy ? 'was redeploying' : 'was installing';
  return {
    action: 'remove',
    version,
    services,
    fromEdge: listed !== undefined,
    why: `an interrupted \`${intent.command}\` (${intent.by}, ${intent.at}) ${what} version ${version} and never finished; removing it (${services.join(', ') || 'no services'})`,
  };
}

/** Removes the services; `docker service rm` removes those it has and names the others on stderr. */
export function removeServicesCommand(services: readonly string[]): Argv {
  return ['docker', 'service', 'rm', ...services];
}

/** The stderr lines of removeServicesCommand that are failures: a service already gone is not one. */
export function removeServicesFailures(stderr: string): string[] {
  return stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/no such service|service .*not found/i.test(l));
}
