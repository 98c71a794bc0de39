import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { OperationError } from '../errors.js';
import {
  acquireLeaseCommand, breakLeaseCommand, describeLeaseHolder, leaseDir, leaseReads, leaseStatusCommand, parseLeaseAnswer, releaseLeaseCommand, renewLeaseCommand,
  type LeaseAnswer, type LeaseHolder,
} from '../plan/lock.js';
import { onInterrupt } from '../util/interrupt.js';
import { FencedRemote, type Fence } from './fenced-remote.js';
import { silentLogger, type Logger } from '../util/log.js';
import { earlierLockPath, layoutFile } from '../plan/state-layout.js';
import { pollUntil } from '../util/poll.js';
import { DEFAULT_STATE_ROOT } from './release-store.js';
import type { Remote } from './remote.js';

/**
 * The cluster-wide deploy lock, a lease on the manager (the shell lines are in src/plan/lock.ts): one depl
 * run holds it at a time; it is renewed while held, given back on every exit path including Ctrl-C and
 * SIGTERM (src/cli/main.ts runs the release), and a lease whose holder stopped renewing it (killed, machine
 * gone) expires and is taken over by the next run, which says so.
 */
export type LockHolder = LeaseHolder;

export interface HeldLock {
  holder: LockHolder;
  /** This acquisition's fencing number: higher than that of every earlier holder of this app's lock. */
  fence: number;
  /** The app folder's state layout as the acquisition found it (src/plan/state-layout.ts; 0: no layout file). */
  stateLayout: number;
  /**
   * The files AcquireOptions.read named, as they were once the lease was held (null: not there), read in the
   * acquisition's own round trip; null when none were asked for, or when they no longer are what they were
   * (`forgetReads`: the caller changed the folder since, as a state layout move does).
   */
  readonly reads: ReadonlyMap<string, string | null> | null;
  forgetReads(): void;
  /** True once another run took the lease over (this run stopped renewing in time). */
  readonly lost: boolean;
  /**
   * The manager as this run writes to it while holding the lock: each write runs only if the lease is still
   * this run's (src/apply/fenced-remote.ts), else fails with LOCK_LOST naming who holds it now.
   */
  fenced(remote: Remote): Remote;
  release(): Promise<void>;
}

export interface AcquireOptions {
  command: string;
  /** How long to wait for another run to finish (`--lock-wait`); 0 fails at once naming the holder. */
  waitMs?: number;
  pollMs?: number;
  /** Lease length; it is renewed every third of it. */
  ttlMs?: number;
  root?: string;
  log?: Logger;
  onWait?: (holder: LockHolder | null) => void;
  /** Files to read once the lease is held, in the same round trip (HeldLock.reads). */
  read?: readonly string[];
}

export const DEFAULT_LEASE_MS = 60_000;

export function lockDir(app: string, root = DEFAULT_STATE_ROOT): string {
  return leaseDir(root, app);
}

export async function acquireLock(remote: Remote, app: string, options: AcquireOptions): Promise<HeldLock> {
  const dir = lockDir(app, options.root);
  const layout = layoutFile(options.root ?? DEFAULT_STATE_ROOT, app);
  const earlierLock = earlierLockPath(options.root ?? DEFAULT_STATE_ROOT, app);
  const log = options.log ?? silentLogger;
  const ttlSeconds = Math.max(1, Math.round((options.ttlMs ?? DEFAULT_LEASE_MS) / 1000));
  const user = userInfo().username;
  const host = hostname();
  const me: LockHolder = { holder: `${user}@${host}`, host, pid: process.pid, command: options.command, since: new Date().toISOString(), token: randomBytes(8).toString('hex') };
  const reads = options.read ?? [];
  let readTexts: Array<string | null> | null = null;
  const run = async (argv: readonly string[]): Promise<LeaseAnswer> => {
    const { stdout } = await remote.exec(argv);
    const answer = parseLeaseAnswer(stdout);
    if (answer.status === 'acquired' || answer.status === 'taken-over') readTexts = leaseReads(stdout, reads.length);
    return answer;
  };
  const release = async () => {
    const answer = await run(releaseLeaseCommand(dir, me.token));
    if (answer.status === 'not-mine') log.warn(`the cluster lock was no longer ours (held by ${describeLeaseHolder(answer.holder)}); left it`);
  };
  // Registered before the first try: an interrupt while the script runs must not leave a lease behind.
  const unregister = onInterrupt(release);
  let told = false;
  let lastHeld: LeaseAnswer | undefined;
  let answer: Extract<LeaseAnswer, { status: 'acquired' | 'taken-over' }>;
  try {
    answer = await pollUntil(async () => {
      let tried = await run(acquireLeaseCommand(dir, me, ttlSeconds, '', layout, earlierLock, reads));
      if (tried.status === 'held' && tried.holder !== null && diedHere(tried.holder)) {
        log.warn(`the cluster lock is held by ${describeLeaseHolder(tried.holder)}, a process that no longer runs on this machine`);
        tried = await run(acquireLeaseCommand(dir, me, ttlSeconds, tried.holder.token, layout, earlierLock, reads));
      }
      if (tried.status === 'acquired' || tried.status === 'taken-over') return tried;
      if (tried.status !== 'held' && tried.status !== 'guard-timeout') throw new Error(`unexpected answer from the lock script: ${tried.status}`);
      if (!told && tried.status === 'held') options.onWait?.(tried.holder);
      told = true;
      lastHeld = tried;
      return undefined;
    }, {
      timeoutMs: options.waitMs ?? 0,
      intervalMs: options.pollMs ?? 1_000,
      onTimeout: () => {
        const held = lastHeld;
        const holder = held?.status === 'held' ? describeLeaseHolder(held.holder, held.expiresAt - held.now) : 'another run (the lock could not be read in time)';
        throw new OperationError(
          `the cluster lock is held by ${holder}`,
          `Wait for that run to finish, or wait for it: --lock-wait 5m. A holder that died gives the lock up when its lease expires; \`depl lock release\` breaks it at once (it is ${remote.name}:${dir}).`,
          'LOCKED',
        );
      },
    });
  } catch (error) {
    unregister();
    throw error;
  }
  if (answer.status === 'taken-over') {
    log.warn(`took over the cluster lock: the lease of ${describeLeaseHolder(answer.previous)} had expired or its process was gone`);
  }
  const texts: Array<string | null> | null = readTexts;
  const read = texts === null ? null : new Map(reads.map((file, i) => [file, texts[i] ?? null]));
  return holdLease(remote, dir, me, answer.fence, answer.layout, read, ttlSeconds, log, release, unregister);
}

function holdLease(
  remote: Remote, dir: string, me: LockHolder, fence: number, stateLayout: number, read: Map<string, string | null> | null, ttlSeconds: number,
  log: Logger, release: () => Promise<void>, unregister: () => void,
): HeldLock {
  let lost = false;
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    renewing = remote.exec(renewLeaseCommand(dir, me.token, ttlSeconds)).then(({ stdout }) => {
      const answer = parseLeaseAnswer(stdout);
      if (answer.status === 'lost' && !lost) {
        lost = true;
        clearInterval(timer);
        log.error(`this run lost the cluster lock to ${describeLeaseHolder(answer.holder)}: its lease ran out before it was renewed`);
      }
    }, (error: Error) => log.warn(`could not renew the cluster lock (${error.message}); retrying`));
  }, (ttlSeconds * 1000) / 3);
  timer.unref();
  let released: Promise<void> | undefined;
  const lease: Fence = { dir, fence, ttlSeconds, command: me.command, get lost() { return lost; } };
  return {
    holder: me,
    fence,
    stateLayout,
    get reads() {
      return read;
    },
    forgetReads() {
      read = null;
    },
    get lost() {
      return lost;
    },
    fenced: (target) => new FencedRemote(target, lease),
    release() {
      released ??= (async () => {
        clearInterval(timer);
        await renewing;
        unregister();
        if (!lost) await release();
      })();
      return released;
    },
  };
}

/** A holder on this very machine whose process is gone died without giving the lock back. */
function diedHere(holder: LockHolder): boolean {
  if (holder.host !== hostname() || holder.pid <= 0 || holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
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

export interface LockStatus {
  holder: LockHolder | null;
  /** Seconds until the lease expires (negative: expired, free for the next run to take). */
  expiresIn: number;
}

/** The holder and its lease, null when unlocked; a lock whose holder file cannot be read has holder null. */
export async function lockStatus(remote: Remote, app: string, root?: string): Promise<LockStatus | null> {
  const answer = parseLeaseAnswer((await remote.exec(leaseStatusCommand(lockDir(app, root), DEFAULT_LEASE_MS / 1000))).stdout);
  if (answer.status !== 'held') return null;
  return { holder: answer.holder, expiresIn: answer.expiresAt - answer.now };
}

/** Removes the lock whoever holds it (`depl lock release`); says whether it was held, and by whom. */
export async function forceReleaseLock(remote: Remote, app: string, root?: string): Promise<{ released: boolean; holder: LockHolder | null }> {
  const answer = parseLeaseAnswer((await remote.exec(breakLeaseCommand(lockDir(app, root)))).stdout);
  return { released: answer.status === 'released', holder: answer.status === 'released' ? answer.holder : null };
}

export function describeHolder(holder: LockHolder | null, expiresIn?: number): string {
  return describeLeaseHolder(holder, expiresIn);
}
