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

/**
 * What brings the swarm to "only `live`'s consumers run": `live`'s services at 0 to their wanted replicas (the
 * app's scale, else the `depl.replicas` label, else 1), every other version's running services to 0. A live
 * service already running keeps its replicas (`depl scale` or an autoscaler set them). Nothing live: nothing.
 */
export function consumerHandover(live: string | null, installed: readonly InstalledVersion[], scale: Record<string, number>): ConsumerHandover {
  if (live === null || !consumersOnly(installed)) return { start: [], stop: [] };
  const start: ScaleTarget[] = [];
  const stop: ScaleTarget[] = [];
  for (const version of installed) {
    for (const service of version.services) {
      const now = version.replicas?.[service];
      if (version.label === live) {
        if (now !== 0) continue;
        const short = service.slice(service.indexOf(`-${version.label}-`) + version.label.length + 2);
        const wanted = scale[short] ?? version.wanted?.[service] ?? 1;
        if (wanted > 0) start.push({ service, replicas: wanted, from: 0 });
      } else if (now === undefined || now > 0) {
        stop.push({ service, replicas: 0, ...(now !== undefined ? { from: now } : {}) });
      }
    }
  }
  return { start, stop };
}

/** One line for a person: which consumers start and which stop. */
export function describeHandover(handover: ConsumerHandover): string {
  const names = (targets: ScaleTarget[]) => targets.map((t) => `${t.service}=${t.replicas}`).join(', ');
  return [handover.start.length > 0 ? `start ${names(handover.start)}` : '', handover.stop.length > 0 ? `stop ${handover.stop.map((t) => t.service).join(', ')}` : ''].filter(Boolean).join('; then ');
}
