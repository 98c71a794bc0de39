import type { ServiceSpec } from './services.js';

/**
 * A swarm service's spec as the Engine's inspect returns it, read by the planners that replace the specs of
 * services an earlier depl installed (src/plan/state-layout.ts): untyped, since an earlier depl wrote it, so every
 * field is looked at before it is trusted.
 */
export interface PresentSpec {
  name: string;
  spec: Record<string, unknown>;
}

type Mount = NonNullable<ServiceSpec['TaskTemplate']['ContainerSpec']['Mounts']>[number];

interface InspectedContainer {
  Image?: unknown;
  Args?: unknown;
  Env?: unknown;
  Mounts?: unknown;
  Secrets?: unknown;
  ReadOnly?: unknown;
}

export function containerOf(spec: Record<string, unknown>): InspectedContainer {
  const template = spec.TaskTemplate as { ContainerSpec?: InspectedContainer } | undefined;
  return template?.ContainerSpec ?? {};
}

export function labelsOf(spec: Record<string, unknown>): Record<string, string> {
  const labels = spec.Labels;
  return typeof labels === 'object' && labels !== null ? (labels as Record<string, string>) : {};
}

/** One line per mount (type, source, target, read-only or not), sorted: two specs mount the same when these are equal. */
export function mountLines(mounts: unknown): string[] {
  if (!Array.isArray(mounts)) return [];
  return (mounts as Partial<Mount>[]).map((m) => `${m.Type ?? '?'} ${m.Source ?? '-'} -> ${m.Target ?? '?'}${m.ReadOnly === true ? ' (ro)' : ''}`).sort();
}

export function sameMounts(present: unknown, planned: readonly Mount[]): boolean {
  const a = mountLines(present);
  const b = mountLines(planned);
  return a.length === b.length && a.every((line, i) => line === b[i]);
}

/** Whether a spec mounts the manager's Docker socket (root on the manager for whoever runs in it). */
export function mountsDockerSocket(spec: Record<string, unknown>): boolean {
  const mounts = containerOf(spec).Mounts;
  return Array.isArray(mounts) && (mounts as Partial<Mount>[]).some((m) => m.Source === '/var/run/docker.sock' || m.Source === '/run/docker.sock');
}

/** The value of `NAME=` in a spec's environment, or undefined. */
export function envValue(spec: Record<string, unknown>, name: string): string | undefined {
  const env = containerOf(spec).Env;
  if (!Array.isArray(env)) return undefined;
  const entry = (env as unknown[]).find((e): e is string => typeof e === 'string' && e.startsWith(`${name}=`));
  return entry?.slice(name.length + 1);
}

/**
 * Whether a container of the spec can read the manager's file or folder `hostPath`: it holds the Docker socket
 * (whoever does reads any file of the manager), or a bind mount shows it and no deeper mount covers it there
 * (an empty tmpfs, or /dev/null bound over a file, hides what is under it). Symbolic links are not followed.
 */
export function seesHostPath(spec: Record<string, unknown>, hostPath: string): boolean {
  if (mountsDockerSocket(spec)) return true;
  const mounts = containerOf(spec).Mounts;
  if (!Array.isArray(mounts)) return false;
  const all = (mounts as Partial<Mount>[]).filter((m): m is Partial<Mount> & { Target: string } => typeof m.Target === 'string');
  const under = (path: string, folder: string) => path === folder || path.startsWith(`${folder.replace(/\/$/, '')}/`);
  return all.some((shown) => {
    if (shown.Type !== 'bind' || typeof shown.Source !== 'string' || !under(hostPath, shown.Source)) return false;
    const inside = `${shown.Target}${hostPath.slice(shown.Source.length)}`;
    // the deepest mount over that path inside the container decides what is there
    const deepest = all.filter((m) => under(inside, m.Target)).sort((a, b) => b.Target.length - a.Target.length)[0];
    return deepest?.Type === 'bind' && typeof deepest.Source === 'string' && `${deepest.Source}${inside.slice(deepest.Target.length)}` === hostPath;
  });
}

/** The replicas a replicated spec asks for; undefined for another mode (or none written). */
export function replicasOf(spec: Record<string, unknown>): number | undefined {
  const replicas = (spec.Mode as { Replicated?: { Replicas?: unknown } } | undefined)?.Replicated?.Replicas;
  return typeof replicas === 'number' ? replicas : undefined;
}
