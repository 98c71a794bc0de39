import { describeHolder, forceReleaseLock, lockStatus } from '../apply/lock.js';
import type { Logger } from '../util/log.js';
import type { ClusterAccess } from './command-inputs.js';

/** `depl lock status` / `depl lock release`: what the command prints and its --json document. */
export interface LockReport {
  json: Record<string, unknown>;
  human: string;
}

/** Who holds the cluster lock, read on the manager (one connection, no lock taken). */
export async function readLockStatus(access: Pick<ClusterAccess, 'app' | 'open'>, log: Logger): Promise<LockReport> {
  const cluster = await access.open(log);
  try {
    const status = await lockStatus(cluster.manager, access.app);
    if (status === null) return { json: { locked: false, holder: null }, human: 'The cluster lock is free.' };
    return {
      json: { locked: true, holder: status.holder, expiresInSeconds: status.expiresIn },
      human: `The cluster lock is held by ${describeHolder(status.holder, status.expiresIn)}${status.expiresIn <= 0 ? '; the next run takes it over' : ''}`,
    };
  } finally {
    await cluster.close();
  }
}

/** Releases a stale lock by force (the operator knows its holder is gone). */
export async function releaseStaleLock(access: Pick<ClusterAccess, 'app' | 'open'>, log: Logger): Promise<LockReport> {
  const cluster = await access.open(log);
  try {
    const { released, holder } = await forceReleaseLock(cluster.manager, access.app);
    return { json: { released, holder }, human: released ? `Released the lock held by ${describeHolder(holder)}` : 'The cluster lock was free; nothing to release.' };
  } finally {
    await cluster.close();
  }
}
