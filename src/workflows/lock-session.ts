import { acquireLock, describeHolder, type HeldLock } from '../apply/lock.js';
import { DEFAULT_STATE_ROOT } from '../apply/release-store.js';
import type { ClusterPort } from './cluster-port.js';
import { ensureStateLayout } from './state-layout.js';

/**
 * The one way into the cluster lock for every command that changes the cluster: release changes and `tls
 * renew` (src/workflows/release.ts withRelease), buildinst, backup and restore. The lock is where the port
 * keeps its state (the manager, under its state root), waited for as long as the port says (`--lock-wait`;
 * 0 refuses at once naming the holder); writes made while holding it go through `lock.fenced(...)`. Once it
 * is held, an app folder an earlier depl left in an earlier layout is moved (src/workflows/state-layout.ts).
 * `read`: files read in the acquisition's round trip (HeldLock.reads), what the command reads first.
 */
export type LockPort = Pick<ClusterPort, 'stateRemote' | 'app' | 'lockWaitMs' | 'stateRoot' | 'log' | 'upgrades' | 'now'>;

export async function acquirePortLock(control: LockPort, command: string, options: { read?: readonly string[] } = {}): Promise<HeldLock> {
  const lock = await acquireLock(control.stateRemote, control.app, {
    command,
    ...(options.read !== undefined ? { read: options.read } : {}),
    waitMs: control.lockWaitMs ?? 0,
    root: control.stateRoot ?? DEFAULT_STATE_ROOT,
    log: control.log,
    onWait: (holder) => control.log.info(`waiting for the cluster lock, held by ${describeHolder(holder)}`),
  });
  try {
    // files read with the lock were read where an earlier layout had them: read again where they are now
    if ((await ensureStateLayout(control, lock)) !== null) lock.forgetReads();
  } catch (error) {
    await lock.release();
    throw error;
  }
  return lock;
}

/** Runs fn holding the port's lock; the lock is given back however fn ends (a killed process's lease runs out). */
export async function withPortLock<T>(control: LockPort, command: string, fn: (lock: HeldLock) => Promise<T>): Promise<T> {
  const lock = await acquirePortLock(control, command);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}
