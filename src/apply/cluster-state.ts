import { z } from 'zod';
import { OperationError } from '../errors.js';
import type { Remote } from './remote.js';

/**
 * What is live on the cluster, kept ON the cluster (a JSON file on the manager) so that every operator's
 * `depl status` sees the same truth. Written atomically (temporary file + rename) under the cluster lock.
 */
const historyEntry = z.object({
  at: z.string(),
  action: z.enum(['switch', 'rollback', 'canary', 'promote', 'abort']),
  version: z.string().nullable(),
  weight: z.number().optional(),
  by: z.string(),
  note: z.string().optional(),
});

const clusterState = z.object({
  app: z.string(),
  live: z.string().nullable(),
  previous: z.string().nullable(),
  canary: z.object({ version: z.string(), weight: z.number() }).nullable(),
  history: z.array(historyEntry),
});

export type ClusterState = z.infer<typeof clusterState>;
export type HistoryEntry = z.infer<typeof historyEntry>;

export const DEFAULT_STATE_ROOT = '/var/lib/depl';
const HISTORY_KEPT = 200;

export function statePath(app: string, root = DEFAULT_STATE_ROOT): string {
  return `${root}/${app}/state.json`;
}

export function emptyState(app: string): ClusterState {
  return { app, live: null, previous: null, canary: null, history: [] };
}

export async function readState(remote: Remote, app: string, root = DEFAULT_STATE_ROOT): Promise<ClusterState> {
  const file = statePath(app, root);
  const text = await remote.readFile(file);
  if (text === null) return emptyState(app);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new OperationError(`${remote.name}:${file} is not valid JSON`, 'Fix or remove it; `depl switch <version>` writes a new one.', 'CLUSTER_STATE_CORRUPT', { cause: error });
  }
  const result = clusterState.safeParse(parsed);
  if (!result.success) {
    throw new OperationError(`${remote.name}:${file} is not a depl cluster state: ${result.error.issues[0]?.message ?? 'bad shape'}`, 'Fix or remove it; `depl switch <version>` writes a new one.', 'CLUSTER_STATE_CORRUPT');
  }
  return result.data;
}

export async function writeState(remote: Remote, app: string, state: ClusterState, root = DEFAULT_STATE_ROOT): Promise<void> {
  const trimmed: ClusterState = { ...state, history: state.history.slice(-HISTORY_KEPT) };
  await remote.writeFileAtomic(statePath(app, root), JSON.stringify(trimmed, null, 2) + '\n', 0o644);
}
