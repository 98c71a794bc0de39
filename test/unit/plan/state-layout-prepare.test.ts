import { lstat, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireLeaseCommand, parseLeaseAnswer } from '../../../src/plan/lock.js';
import { MOVED_LEASE_TOKEN, parsePrepareAnswer, prepareLayoutCommand, STATE_LAYOUT } from '../../../src/plan/state-layout.js';
import {
  bareMkdirAcquire, bareMkdirBreak, bareMkdirStatus, earlierAcquire, earlierBreak, earlierFencedWrite, earlierRelease, earlierStatus,
} from '../../support/earlier-lock-commands.js';

/** The layout move's first step, run by real sh on a folder of this machine, and what an earlier depl's own commands then do there. */
const roots: string[] = [];
afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

const run = async (argv: readonly string[]) => {
  const [command, ...args] = argv as [string, ...string[]];
  return execa(command, args, { reject: false });
};

async function appFolder(setUp: (dir: string) => Promise<void>): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'depl-layout-'));
  roots.push(root);
  const dir = path.join(root, 'shop');
  await mkdir(path.join(dir, 'lease'), { recursive: true });
  await setUp(dir);
  return dir;
}

async function prepare(dir: string, at = '2026-12-07T09:30:00Z') {
  return parsePrepareAnswer((await run(prepareLayoutCommand(path.dirname(dir), 'shop', at))).stdout);
}

async function prepared(setUp: (dir: string) => Promise<void>) {
  const dir = await appFolder(setUp);
  return { dir, answer: await prepare(dir) };
}

const earlierHolder = { holder: 'old@laptop', host: 'laptop', pid: 1, command: 'switch v1', since: '2026-11-01T00:00:00Z', token: 'earlier' };
/** The lease folder the first layout 2 left at `lock` (a depl of the last session): a lease that never expires. */
async function leaseFolderFence(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'lock'));
  await writeFile(path.join(dir, 'lock', 'holder.json'), JSON.stringify({ ...earlierHolder, holder: 'depl (state layout 2)', token: MOVED_LEASE_TOKEN }));
  await writeFile(path.join(dir, 'lock', 'expires'), '4102444800\n');
}

describe('state layout 2, its first step', () => {
  it('on a new cluster\'s app folder moves nothing and says so (no "moves to state layout 2" line on a fresh cluster)', async () => {
    const { dir, answer } = await prepared(async () => {});
    expect(answer).toEqual({ status: 'prepared', found: 'nothing' });
    // the earlier lock's place is fenced off for an earlier depl: a plain file saying why
    expect((await lstat(path.join(dir, 'lock'))).isFile()).toBe(true);
    expect(await readFile(path.join(dir, 'lock'), 'utf8')).toMatch(/moved this cluster's lock to lease\/lock.*\n.*upgrade depl/);
  });

  it('on a folder an earlier depl left says it found one, and moves no secret yet (the services that could read it are stopped first)', async () => {
    const { dir, answer } = await prepared((d) => writeFile(path.join(d, 'tls-account.json'), '{"url":"https://acme.test/acct/7"}'));
    expect(answer).toEqual({ status: 'prepared', found: 'earlier' });
    expect(await readFile(path.join(dir, 'tls-account.json'), 'utf8')).toBe('{"url":"https://acme.test/acct/7"}');
    await expect(stat(path.join(dir, 'tls', 'account.json'))).rejects.toThrow();
  });

  it('run again after it fenced (a kill before the layout file was written) finds its own fence, not a holder', async () => {
    const { dir } = await prepared((d) => writeFile(path.join(d, 'tls-renewal.json'), '{}'));
    expect(await prepare(dir, '2026-12-07T09:31:00Z')).toEqual({ status: 'prepared', found: 'earlier' });
    // its fence was not made again
    expect(await readFile(path.join(dir, 'lock'), 'utf8')).toContain('on 2026-12-07T09:30:00Z');
  });

  it('refuses while an earlier depl holds its lease there, and changes nothing', async () => {
    const dir = await appFolder(async (d) => {
      const taken = parseLeaseAnswer((await run(earlierAcquire(path.join(d, 'lock'), earlierHolder, 120))).stdout);
      expect(taken.status).toBe('acquired');
    });
    expect(await prepare(dir)).toMatchObject({ status: 'held', holder: { holder: 'old@laptop', command: 'switch v1' }, reopened: false });
    expect((await lstat(path.join(dir, 'lock'))).isDirectory()).toBe(true);
  });
});

describe('what an earlier depl\'s own lock commands do against the fence (their exact scripts, test/support/earlier-lock-commands.ts)', () => {
  async function fenced(): Promise<string> {
    const dir = await appFolder(async (d) => {
      await writeFile(path.join(d, 'tls-account.json'), '{"url":"https://acme.test/acct/7"}');
      await writeFile(path.join(d, 'lock.fence'), '41\n');
    });
    expect(await prepare(dir)).toEqual({ status: 'prepared', found: 'earlier' });
    return dir;
  }
  const fence = (dir: string) => path.join(dir, 'lock');

  it('its `depl lock release` removes nothing; its acquire, with or without a dead holder\'s token, finds the lock held; its writes are refused', async () => {
    const dir = await fenced();
    const before = await readFile(fence(dir), 'utf8');
    // `depl lock release` and the end-of-command release: they look for a lease folder, find none, and say it is free
    expect((await run(earlierBreak(fence(dir)))).stdout).toBe('free');
    expect((await run(earlierRelease(fence(dir), 'earlier'))).stdout).toBe('free');
    expect(await readFile(fence(dir), 'utf8')).toBe(before);
    // acquire: its mkdir fails and the fence dates its lease to 2100: held, for good
    for (const token of ['', MOVED_LEASE_TOKEN]) {
      const answer = parseLeaseAnswer((await run(earlierAcquire(fence(dir), earlierHolder, 60, token))).stdout);
      expect(answer.status).toBe('held');
      expect(answer.status === 'held' && answer.expiresAt - answer.now).toBeGreaterThan(60 * 365 * 24 * 3600);
    }
    // a write under that depl's fence (release.json) never runs
    const write = await run(earlierFencedWrite(fence(dir), 42, 60, `echo taken > ${path.join(dir, 'release.json')}`));
    expect(write.exitCode).toBe(75);
    expect(write.stderr).toBe('depl-fenced free');
    await expect(stat(path.join(dir, 'release.json'))).rejects.toThrow();
    // the depl before leases: its mkdir fails, its `lock release` finds no folder (test -d) and so runs no rm
    expect((await run(bareMkdirAcquire(fence(dir)))).exitCode).not.toBe(0);
    const found = (await run(bareMkdirStatus(fence(dir)))).exitCode === 0;
    expect(found).toBe(false);
    if (found) await run(bareMkdirBreak(fence(dir)));
    expect((await lstat(fence(dir))).isFile()).toBe(true);
    // after all of that, this depl's own acquisition still finds its layout whole (the fence in place)
    await writeFile(path.join(dir, 'layout'), `${STATE_LAYOUT}\n`);
    const ours = parseLeaseAnswer((await run(acquireLeaseCommand(path.join(dir, 'lease', 'lock'), { ...earlierHolder, token: 'now' }, 60, '', path.join(dir, 'layout'), fence(dir)))).stdout);
    expect(ours).toMatchObject({ status: 'acquired', layout: STATE_LAYOUT });
    // (its status command calls the lock free: it has no word for a fence; the acquire's answer is what stops it)
    expect((await run(earlierStatus(fence(dir), 60))).stdout).toBe('free');
  });

  async function movedByTheFirstLayout2(): Promise<string> {
    return appFolder(async (d) => {
      await leaseFolderFence(d);
      await writeFile(path.join(d, 'layout'), '2\n');
    });
  }
  const acquire = async (dir: string) =>
    parseLeaseAnswer((await run(acquireLeaseCommand(path.join(dir, 'lease', 'lock'), { ...earlierHolder, token: 'now' }, 60, '', path.join(dir, 'layout'), fence(dir)))).stdout);

  it('the lease folder the first layout 2 left there instead, untouched: this depl\'s acquisition reads the layout as not current, and the first step makes it a fence quietly', async () => {
    const dir = await movedByTheFirstLayout2();
    expect(await acquire(dir)).toMatchObject({ status: 'acquired', layout: 1 });
    expect(await prepare(dir)).toEqual({ status: 'prepared', found: 'nothing' });
    expect((await lstat(fence(dir))).isFile()).toBe(true);
  });

  it('that lease folder removed by an earlier depl\'s `depl lock release`: the first step fences it again and says the cluster was reopened', async () => {
    const dir = await movedByTheFirstLayout2();
    expect((await run(earlierBreak(fence(dir)))).stdout).toMatch(/^released/);
    expect(await acquire(dir)).toMatchObject({ status: 'acquired', layout: 1 });
    expect(await prepare(dir)).toEqual({ status: 'prepared', found: 'reopened' });
    expect((await lstat(fence(dir))).isFile()).toBe(true);
  });

  it('an earlier depl that took the lock there after such a release: this depl refuses while it holds it, naming it', async () => {
    const dir = await movedByTheFirstLayout2();
    await run(earlierBreak(fence(dir)));
    expect(parseLeaseAnswer((await run(earlierAcquire(fence(dir), earlierHolder, 120))).stdout).status).toBe('acquired');
    expect(await prepare(dir)).toMatchObject({ status: 'held', reopened: true, holder: { holder: 'old@laptop' } });
    expect((await lstat(fence(dir))).isDirectory()).toBe(true);
  });
});
