import type { Argv } from './shell.js';

/**
 * Image distribution as data (src/apply/distribute.ts runs it): how an image built on the manager reaches the
 * nodes that run it. With a registry: the manager pushes once and every node pulls what its tasks need. Without
 * one: each other node is asked, in one command, whether it has the image under its tag (nothing to do), has
 * the same image id under another tag (tag it: an unchanged tree built again), or lacks it; the nodes that lack
 * it get `docker save` from the manager streamed into `docker load`.
 */
export type DistributionPlan =
  | { mode: 'registry'; image: string }
  | { mode: 'ssh'; image: string; id: string; nodes: { name: string; check: Argv }[]; load: Argv };

/** What a node answered to the check: `skipped` (has it), `tagged` (had the id, now tagged), `missing`. */
export type NodeImageState = 'skipped' | 'tagged' | 'missing';

const CHECK_SCRIPT = [
  'have=$(docker image inspect --format "{{.Id}}" "$1" 2>/dev/null || true)',
  'if [ "$have" = "$2" ]; then echo skipped',
  'elif docker image inspect --format "{{.Id}}" "$2" >/dev/null 2>&1; then docker tag "$2" "$1" && echo tagged',
  'else echo missing; fi',
].join('\n');

/** One round trip per node: tag already right, or the id present and tagged now, or missing. */
export function nodeImageCheckCommand(image: string, id: string): Argv {
  return ['sh', '-c', CHECK_SCRIPT, 'depl-image', image, id];
}

/** Reads a node's image into its engine from the archive on stdin (`docker save` output). */
export function loadImageCommand(): Argv {
  return ['docker', 'load', '--quiet'];
}

export function parseNodeImageState(stdout: string): NodeImageState | null {
  const answer = stdout.trim().split('\n').at(-1)?.trim();
  return answer === 'skipped' || answer === 'tagged' || answer === 'missing' ? answer : null;
}

/** `nodes`: those that run the image's tasks; the manager built it and is never sent it. */
export function planDistribution(input: { image: string; id: string; nodes: readonly string[]; manager: string; registry?: string }): DistributionPlan {
  if (input.registry !== undefined) return { mode: 'registry', image: input.image };
  return {
    mode: 'ssh',
    image: input.image,
    id: input.id,
    nodes: input.nodes.filter((name) => name !== input.manager).map((name) => ({ name, check: nodeImageCheckCommand(input.image, input.id) })),
    load: loadImageCommand(),
  };
}
