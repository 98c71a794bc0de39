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
