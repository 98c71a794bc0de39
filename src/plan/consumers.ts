import type { InstalledVersion } from './release-state.js';
import type { ScaleTarget } from './scale.js';

/**
 * Apps whose services all consume queues (no service has `http: true`, so there is no edge): "live" is the
 * version whose consumers run. Two versions' consumers never both take work for long: a new version is
 * installed with its consumers stopped (0 replicas, its wanted replicas in the `depl.replicas` label) while
 * another version is installed; `depl switch` starts the new live version's consumers (health-gated: its
 * tasks run, which with a `healthcheck:` means they pass it), then stops the old one's (swarm sends their
 * stop signal and waits their stop grace period, so a consumer that hands its work back on SIGTERM loses
 * none). An app that mixes web and consumer services is routed as before: its consumers follow the web switch.
 *
 * The handover is a set of scale targets computed from the release state alone, so it is also what repairs a
 * switch killed half-way: the next command brings the swarm to "only the live version's consumers run".
 */

/** True when the app is made of consumers only: versions are installed and none has an http service. */
export function consumersOnly(installed: readonly InstalledVersion[]): boolean {
  return installed.length > 0 && installed.every((v) => v.http === undefined);
}

export interface ConsumerHandover {
  /** The live version's consumers that do not run (0 replicas), to their wanted replicas: first, and awaited. */
  start: ScaleTarget[];
  /** Every other version's consumers that run, to 0: once the live ones run. */
  stop: ScaleTarget[];
}

/** A canary's share of a consumers-only app: `weight`% of each service's replicas, at least one of each version. */
export function canaryReplicas(wanted: number, weight: number): { canary: number; live: number } {
  if (wanted <= 0) return { canary: 0, live: 0 };
  const canary = Math.min(wanted, Math.max(1, Math.round((wanted * weight) / 100)));
  return { canary, live: weight >= 100 ? wanted - canary : Math.max(1, wanted - canary) };
}

/**
 * What brings the swarm to "only `live`'s consumers run" (and, with a canary, `canary.weight`% of each service's
 * replicas from the canary version, the rest from live; canaryReplicas): services below their target are started
 * (first, and awaited), those above it scaled down, every other version's running services stopped. Replicas are
 * the app's scale, else the `depl.replicas` label, else 1. Without a canary, a live service already running keeps
 * its replicas (`depl scale` or an autoscaler set them), unless `exact`: a canary just ended (promote, abort),
 * so live goes back to its full replicas. Nothing live: nothing.
 */
export function consumerHandover(
  live: string | null, installed: readonly InstalledVersion[], scale: Record<string, number>,
  canary: { version: string; weight: number } | null = null, exact = false,
): ConsumerHandover {
  if (live === null || !consumersOnly(installed)) return { start: [], stop: [] };
  const start: ScaleTarget[] = [];
  const stop: ScaleTarget[] = [];
  const wantedOf = (version: InstalledVersion, service: string) => {
    const short = service.slice(service.indexOf(`-${version.label}-`) + version.label.length + 2);
    return scale[short] ?? version.wanted?.[service] ?? 1;
  };
  for (const version of installed) {
    const isCanary = canary !== null && version.label === canary.version && version.label !== live;
    for (const service of version.services) {
      const now = version.replicas?.[service];
      let target: number;
      if (isCanary) target = canaryReplicas(wantedOf(version, service), canary.weight).canary;
      else if (version.label === live && canary !== null) target = canaryReplicas(wantedOf(version, service), canary.weight).live;
      else if (version.label === live) {
        if (now !== 0 && !exact) continue;
        target = wantedOf(version, service);
      } else target = 0;
      if (now === target) continue;
      const t: ScaleTarget = { service, replicas: target, ...(now !== undefined ? { from: now } : {}) };
      if (now === undefined ? target > 0 : target > now) start.push(t);
      else stop.push(t);
    }
  }
  return { start, stop };
}

/** One line for a person: which consumers start and which stop (or go down to fewer replicas). */
export function describeHandover(handover: ConsumerHandover): string {
  const names = (targets: ScaleTarget[]) => targets.map((t) => `${t.service}=${t.replicas}`).join(', ');
  const stopped = handover.stop.map((t) => (t.replicas === 0 ? t.service : `${t.service}=${t.replicas}`)).join(', ');
  return [handover.start.length > 0 ? `start ${names(handover.start)}` : '', handover.stop.length > 0 ? `stop ${stopped}` : ''].filter(Boolean).join('; then ');
}
