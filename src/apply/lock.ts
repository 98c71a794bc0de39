import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { OperationError } from '../errors.js';
import { DEFAULT_STATE_ROOT } from './cluster-state.js';
import type { Remote } from './remote.js';

/**
 * The cluster-wide deploy lock (Kamal's): `mkdir` on the manager is atomic, so exactly one depl run creates
 * the directory; it holds a JSON file naming the holder so that the others can say who to wait for.
 */
export interface LockHolder {
  holder: string;
  pid: number;
  command: string;
  time: string;
  token: string;
}

export interface HeldLock {
  holder: LockHolder;
  release(): Promise<void>;
}

export interface AcquireOptions {
  command: string;
  /** How long to wait for another run to finish; 0 fails at once. */
  waitMs?: number;
  pollMs?: number;
  root?: string;
  onWait?: (holder: LockHolder | null) => void;
}

export function lockDir(app: string, root = DEFAULT_STATE_ROOT): string {
  return `${root}/${app}/lock`;
}

export async function acquireLock(remote: Remote, app: string, options: AcquireOptions): Promise<HeldLock> {
  const dir = lockDir(app, options.root);
  const me: LockHolder = {
    holder: `${userInfo().username}@${hostname()}`,
    pid: process.pid,
    command: options.command,
    time: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  const deadline = Date.now() + (options.waitMs ?? 0);
  let told = false;
  for (;;) {
    const made = await remote.exec(['sh', '-c', 'mkdir -p "$(dirname "$1")" && mkdir "$1"', 'sh', dir], { check: false });
    if (made.code === 0) {
      await remote.writeFileAtomic(`${dir}/holder.json`, JSON.stringify(me) + '\n');
      return { holder: me, release: () => releaseIfMine(remote, dir, me.token) };
    }
    const holder = await lockStatus(remote, app, options.root);
    if (Date.now() >= deadline) {
      throw new OperationError(
        `the cluster lock is held by ${describeHolder(holder)}`,
        `Wait for that run to finish. If it died, release the lock with \`depl lock release\` (it is ${remote.name}:${dir}).`,
        'LOCKED',
      );
    }
    if (!told) options.onWait?.(holder);
    told = true;
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1_000));
  }
}

/** Runs fn holding the lock; the lock is released however fn ends. */
export async function withLock<T>(remote: Remote, app: string, options: AcquireOptions, fn: (lock: HeldLock) => Promise<T>): Promise<T> {
  const lock = await acquireLock(remote, app, options);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}

/** The holder, null when unlocked; a lock whose holder file is not written yet reads as `unknown`. */
export async function lockStatus(remote: Remote, app: string, root?: string): Promise<LockHolder | null> {
  const dir = lockDir(app, root);
  const exists = await remote.exec(['test', '-d', dir], { check: false });
  if (exists.code !== 0) return null;
  const text = await remote.readFile(`${dir}/holder.json`);
  try {
    if (text !== null) return JSON.parse(text) as LockHolder;
  } catch {
    // fall through: a half-written or foreign file
  }
  return { holder: 'unknown', pid: 0, command: 'unknown', time: 'unknown', token: '' };
}

/** Removes the lock whoever holds it (`depl lock release`); returns who held it. */
export async function forceReleaseLock(remote: Remote, app: string, root?: string): Promise<LockHolder | null> {
  const holder = await lockStatus(remote, app, root);
  if (holder !== null) await remote.exec(['rm', '-rf', lockDir(app, root)]);
  return holder;
}

export function describeHolder(holder: LockHolder | null): string {
  if (holder === null) return 'nobody';
  return `${holder.holder} (pid ${holder.pid}, \`${holder.command}\`, since ${holder.time})`;
}

async function releaseIfMine(remote: Remote, dir: string, token: string): Promise<void> {
  const text = await remote.readFile(`${dir}/holder.json`);
  // Someone ran `depl lock release` and another run took the lock since: theirs now, leave it.
  if (text !== null && !text.includes(`"token":"${token}"`)) return;
  await remote.exec(['rm', '-rf', dir]);
}
