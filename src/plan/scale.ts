/**
 * `depl scale worker=5 api=2`: the pairs as the operator typed them, checked before anything is read from the
 * cluster (src/apply/swarm.ts sets and reads the replicas). The transition that decides and records
 * a scale is planScale in src/plan/release-state.ts.
 */

/** depl.yaml's `replicas` allows at most this many; `depl scale` the same. */
export const MAX_REPLICAS = 100;

/** One service of one version to bring to `replicas` (`from`: what the swarm has now, when known). */
export interface ScaleTarget {
  /** The swarm service: `<app>-<version>-<service>`. */
  service: string;
  replicas: number;
  from?: number;
}

export interface ScaleProblem {
  message: string;
  hint: string;
}

const PAIR = /^([^=\s]+)=(.*)$/;

/**
 * `["worker=5", "api=2"]` -> `{ worker: 5, api: 2 }`, or every problem at once (all of them, so one run shows
 * all there is to fix). `accessories`: names that are not scaled (an accessory is one task pinned to the node
 * holding its volume); `autoscaled`: services depl.yaml's `autoscale:` leaves to their controller.
 */
export function parseScalePairs(pairs: readonly string[], accessories: readonly string[] = [], autoscaled: Readonly<Record<string, { min: number; max: number }>> = {}): { ok: true; replicas: Record<string, number> } | { ok: false; problems: ScaleProblem[] } {
  const problems: ScaleProblem[] = [];
  const replicas: Record<string, number> = {};
  if (pairs.length === 0) problems.push({ message: 'no <service>=<replicas> pair given', hint: 'For example: depl scale worker=5 api=2' });
  for (const pair of pairs) {
    const match = PAIR.exec(pair);
    if (match === null) {
      problems.push({ message: `"${pair}" is not <service>=<replicas>`, hint: 'For example: depl scale worker=5' });
      continue;
    }
    const [, service, count] = match as unknown as [string, string, string];
    if (!/^\d+$/.test(count) || Number(count) > MAX_REPLICAS) {
      problems.push({ message: `${service}=${count}: replicas must be a whole number from 0 to ${MAX_REPLICAS}`, hint: `For example: depl scale ${service}=3` });
      continue;
    }
    if (accessories.includes(service)) {
      problems.push({
        message: `${service} is an accessory: it runs one task pinned to the node that holds its volume, and is not scaled`,
        hint: 'Scale the services of a version (`depl versions` lists them); an accessory keeps one task.',
      });
      continue;
    }
    const bounds = autoscaled[service];
    if (bounds !== undefined) {
      problems.push({
        message: `${service} is autoscaled: its controller keeps it between ${bounds.min} and ${bounds.max} replicas while its version is live`,
        hint: `Change autoscale.${service}.min/max in depl.yaml (and run depl buildinst), or remove its autoscale entry to scale it by hand.`,
      });
      continue;
    }
    const n = Number(count);
    if (replicas[service] !== undefined && replicas[service] !== n) {
      problems.push({ message: `${service} is given twice (${replicas[service]} and ${n})`, hint: `Give each service once: depl scale ${service}=${n}` });
      continue;
    }
    replicas[service] = n;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, replicas };
}

/** `worker=5, api=2`: how a scale reads in the history and the dry run. */
export function describeScale(replicas: Record<string, number>): string {
  return Object.entries(replicas).map(([service, n]) => `${service}=${n}`).join(', ');
}
