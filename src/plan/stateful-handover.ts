import type { InstalledVersion } from './release-state.js';
import type { ScaleTarget } from './scale.js';

/**
 * A stateful service (a named volume, README: Stateful web apps) is run by one version at a time: two tasks
 * must never share its data files. An install takes the volume over stop-first and makes its version live; a
 * switch or rollback to a version whose stateful service was taken over hands the volume back the same way:
 * the versions running it are stopped (and their tasks gone) before the target's starts, and the target must
 * then pass its health check before the edge moves. The live domain fails from that stop until then, as it
 * does during the install's takeover.
 *
 * The handover is computed from the installed versions alone, so it is also what repairs a switch killed
 * half-way: the next locked command brings the swarm to "the live version runs its stateful services".
 */
export interface StatefulHandover {
  /** Every other version's services on the target's volumes that run, to 0: first, and awaited until gone. */
  stop: ScaleTarget[];
  /** The target's stateful services that do not run, to 1 (a stateful service runs one task). */
  start: ScaleTarget[];
}

/** The short name of `<app>-<version>-<service>` (depl scale's key). */
function shortName(version: InstalledVersion, service: string): string {
  const marker = `-${version.label}-`;
  return service.slice(service.indexOf(marker) + marker.length);
}

/**
 * What gives `target` its stateful services' volumes: the versions running a service on one of them stopped,
 * then the target's started. A service the operator scaled to 0 (`depl scale web=0`) is left stopped; a volume
 * only other versions use is none of this handover's business.
 */
export function statefulHandover(target: string | null, installed: readonly InstalledVersion[], scale: Record<string, number> = {}): StatefulHandover {
  const version = installed.find((v) => v.label === target);
  if (version?.stateful === undefined) return { stop: [], start: [] };
  const start: ScaleTarget[] = [];
  const volumes = new Set<string>();
  for (const [service, volume] of Object.entries(version.stateful)) {
    if (scale[shortName(version, service)] === 0) continue;
    volumes.add(volume);
    if ((version.replicas?.[service] ?? 0) === 0) start.push({ service, replicas: 1, from: 0 });
  }
  const stop: ScaleTarget[] = [];
  for (const other of installed) {
    if (other.label === target || other.stateful === undefined) continue;
    for (const [service, volume] of Object.entries(other.stateful)) {
      const now = other.replicas?.[service];
      if (volumes.has(volume) && (now === undefined || now > 0)) stop.push({ service, replicas: 0, ...(now !== undefined ? { from: now } : {}) });
    }
  }
  // nothing to start: the target already runs them, and anything else on its volumes is stopped regardless
  return { stop: stop.sort((a, b) => a.service.localeCompare(b.service)), start };
}

/** True when nothing needs to change. */
export function handoverIsEmpty(handover: StatefulHandover): boolean {
  return handover.stop.length === 0 && handover.start.length === 0;
}

/** One line for a person: which services stop and which start. */
export function describeStatefulHandover(handover: StatefulHandover): string {
  return [
    handover.stop.length > 0 ? `stop ${handover.stop.map((t) => t.service).join(', ')}` : '',
    handover.start.length > 0 ? `start ${handover.start.map((t) => t.service).join(', ')}` : '',
  ].filter(Boolean).join('; then ');
}
