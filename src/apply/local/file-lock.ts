import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OperationError } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { pollUntil } from '../../util/poll.js';

interface Owner {
  pid: number;
  host: string;
  since: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` while holding a lock made by an atomic mkdir, so several processes on this machine (the CLI,
 * several test files) never build the same thing at once. A lock whose owner process is gone is taken over.
 */
export async function withFileLock<T>(lockDir: string, what: string, log: Logger, fn: () => Promise<T>, timeoutMs = 15 * 60_000, pollMs = 500): Promise<T> {
  await mkdir(path.dirname(lockDir), { recursive: true });
  let told = false;
  let owner: Owner | null = null;
  const take = async (): Promise<true | undefined> => {
    try {
      await mkdir(lockDir);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    owner = await readOwner(lockDir);
    const dead = owner && owner.host === os.hostname() && !alive(owner.pid);
    // an owner file never written: its maker died between mkdir and writing it
    if (dead || (!owner && (await lockAgeMs(lockDir)) > 30_000)) {
      if (dead) log.debug(`${what}: taking over the lock of pid ${owner!.pid}, which is gone`);
      await rm(lockDir, { recursive: true, force: true });
      return take();
    }
    if (!told) {
      log.step(`${what}: waiting for another process (pid ${owner?.pid ?? '?'}) that is doing it now`);
      told = true;
    }
    return undefined;
  };
  await pollUntil(take, {
    timeoutMs,
    intervalMs: pollMs,
    onTimeout: () => {
      throw new OperationError(`${what}: still locked by pid ${(owner as Owner | null)?.pid ?? '?'} after ${Math.round(timeoutMs / 1000)} s`, `If no depl process is running, remove ${lockDir}.`, 'LOCK_TIMEOUT');
    },
  });
  await writeFile(path.join(lockDir, 'owner.json'), JSON.stringify({ pid: process.pid, host: os.hostname(), since: Date.now() } satisfies Owner));
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

async function readOwner(lockDir: string): Promise<Owner | null> {
  try {
    return JSON.parse(await readFile(path.join(lockDir, 'owner.json'), 'utf8')) as Owner;
  } catch {
    return null;
  }
}

async function lockAgeMs(lockDir: string): Promise<number> {
  try {
    return Date.now() - (await stat(lockDir)).mtimeMs;
  } catch {
    return 0;
  }
}
