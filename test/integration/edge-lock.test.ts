import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir, userInfo } from 'node:os';
import { execa } from 'execa';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readReleaseDocument, writeReleaseDocument } from '../../src/apply/release-store.js';
import { emptyReleaseState, toDocument } from '../../src/plan/release-state.js';
import { LocalRemote } from '../../src/apply/local-remote.js';
import { acquireLock, forceReleaseLock, lockDir, lockStatus, withLock } from '../../src/apply/lock.js';
import { acquireLeaseCommand, parseLeaseAnswer, releaseLeaseCommand, renewLeaseCommand } from '../../src/plan/lock.js';
import { silentLogger } from '../../src/util/log.js';
import { pollUntil } from '../../src/util/poll.js';

/** The cluster lock and state files with real sh, flock, mkdir and rename on this machine (the manager runs the same over SSH). */
const remote = new LocalRemote();
const app = 'locktest';
let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'depl-lock-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('cluster lock', () => {
  it('lets one run in and tells the next who holds it, with its lease', async () => {
    const first = await acquireLock(remote, app, { command: 'depl switch v2', root });
    await expect(acquireLock(remote, app, { command: 'depl buildinst', root })).rejects.toThrow(/the cluster lock is held by .+@.+ \(pid \d+, `depl switch v2`, since \d{4}-.*, lease expires in \d+ s\)/);
    expect(await lockStatus(remote, app, root)).toMatchObject({ holder: { command: 'depl switch v2', pid: process.pid, host: hostname() }, expiresIn: expect.any(Number) });
    await first.release();
    expect(await lockStatus(remote, app, root)).toBeNull();
  });

  it('waits for the holder when asked to, and always releases', async () => {
    const first = await acquireLock(remote, app, { command: 'depl canary', root });
    let waitedFor = '';
    setTimeout(() => void first.release(), 300);
    const result = await withLock(remote, app, { command: 'depl switch v1', root, waitMs: 5_000, pollMs: 50, onWait: (h) => { waitedFor = h?.command ?? ''; } }, async () => 'done');
    expect(result).toBe('done');
    expect(waitedFor).toBe('depl canary');
    await expect(withLock(remote, app, { command: 'x', root }, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await lockStatus(remote, app, root)).toBeNull();
  });

  it('can be broken by hand, and a run whose lock was broken does not remove the next holder', async () => {
    const stale = await acquireLock(remote, app, { command: 'depl switch v1', root });
    expect(await forceReleaseLock(remote, app, root)).toMatchObject({ released: true, holder: { command: 'depl switch v1' } });
    const next = await acquireLock(remote, app, { command: 'depl switch v2', root });
    await stale.release();
    expect(await lockStatus(remote, app, root)).toMatchObject({ holder: { command: 'depl switch v2' } });
    await next.release();
    expect(await forceReleaseLock(remote, app, root)).toEqual({ released: false, holder: null });
  });

  it('renews the lease while held', async () => {
    const held = await acquireLock(remote, app, { command: 'depl buildinst', root, ttlMs: 2_000 });
    const first = await readFile(path.join(lockDir(app, root), 'expires'), 'utf8');
    await pollUntil(async () => ((await readFile(path.join(lockDir(app, root), 'expires'), 'utf8')) !== first ? true : undefined), {
      timeoutMs: 5_000, intervalMs: 100, onTimeout: () => { throw new Error('the lease was not renewed'); },
    });
    expect(held.lost).toBe(false);
    await held.release();
  });

  it('takes over an expired lease, saying whose', async () => {
    // a holder that stopped renewing (its machine went away): the lease is written and never touched again
    const gone = { holder: 'ops@elsewhere', host: 'elsewhere', pid: 77, command: 'switch v9', since: new Date().toISOString(), token: 'feedfacefeedface' };
    await remote.exec(acquireLeaseCommand(lockDir(app, root), gone, 3));
    await expect(acquireLock(remote, app, { command: 'depl switch v1', root })).rejects.toThrow(/held by ops@elsewhere/);
    await pollUntil(async () => ((await lockStatus(remote, app, root))!.expiresIn <= 0 ? true : undefined), {
      timeoutMs: 10_000, intervalMs: 200, onTimeout: () => { throw new Error('the lease never expired'); },
    });
    const warnings: string[] = [];
    const held = await acquireLock(remote, app, { command: 'depl switch v1', root, log: { ...silentLogger, warn: (m) => warnings.push(m) } });
    expect(warnings.join('\n')).toMatch(/took over the cluster lock: the lease of ops@elsewhere \(pid 77, `switch v9`/);
    // the old holder, were it to come back, can neither renew nor release it
    expect(parseLeaseAnswer((await remote.exec(renewLeaseCommand(lockDir(app, root), gone.token, 60))).stdout)).toMatchObject({ status: 'lost', holder: { command: 'depl switch v1' } });
    expect(parseLeaseAnswer((await remote.exec(releaseLeaseCommand(lockDir(app, root), gone.token))).stdout).status).toBe('not-mine');
    await held.release();
  });

  it('takes over at once from a process on this machine that no longer runs', async () => {
    const child = await execa('node', ['-e', 'process.stdout.write(String(process.pid))']);
    const dead = { holder: `${userInfo().username}@${hostname()}`, host: hostname(), pid: Number(child.stdout), command: 'buildinst v3', since: new Date().toISOString(), token: '0123456789abcdef' };
    await remote.exec(acquireLeaseCommand(lockDir(app, root), dead, 3600));
    const warnings: string[] = [];
    const held = await acquireLock(remote, app, { command: 'depl switch v1', root, log: { ...silentLogger, warn: (m) => warnings.push(m) } });
    expect(warnings.join('\n')).toContain(`pid ${dead.pid}, \`buildinst v3\``);
    expect(await lockStatus(remote, app, root)).toMatchObject({ holder: { command: 'depl switch v1', pid: process.pid } });
    await held.release();
  });

  it('fences off a run whose lock was broken: its writes are refused on the manager, the next holder\'s are not', async () => {
    const stale = await acquireLock(remote, app, { command: 'depl switch v1', root });
    await forceReleaseLock(remote, app, root);
    const next = await acquireLock(remote, app, { command: 'depl switch v2', root });
    const before = toDocument({ ...emptyReleaseState(app), live: 'v2' });
    await writeReleaseDocument(next.fenced(remote), before, root);
    // the stale run has not noticed (its next renewal is far off): the manager's check of the fencing number refuses
    expect(stale.lost).toBe(false);
    const late = toDocument({ ...emptyReleaseState(app), live: 'v1' });
    await expect(writeReleaseDocument(stale.fenced(remote), late, root)).rejects.toMatchObject({ code: 'LOCK_LOST', message: expect.stringMatching(/^this run no longer holds the cluster lock: .*; it wrote nothing more to /) });
    await expect(stale.fenced(remote).shell(`echo late > ${path.join(root, app, 'late')}`)).rejects.toMatchObject({ code: 'LOCK_LOST' });
    expect(await readReleaseDocument(remote, app, root)).toEqual(before);
    await expect(readFile(path.join(root, app, 'late'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
    await stale.release();
    expect(await lockStatus(remote, app, root)).toMatchObject({ holder: { command: 'depl switch v2' } });
    await next.release();
    await rm(path.join(root, app, 'release.json'));
  });

  it('reads a lock left by a depl from before leases (no expiry file) as held for one lease from when it was made', async () => {
    await mkdir(lockDir(app, root), { recursive: true });
    await writeFile(path.join(lockDir(app, root), 'holder.json'), JSON.stringify({ holder: 'me@old', pid: 1, command: 'switch v1', time: '2026-11-20T10:00:00Z', token: 'aa' }));
    expect(await lockStatus(remote, app, root)).toMatchObject({ holder: { holder: 'me@old', since: '2026-11-20T10:00:00Z' }, expiresIn: expect.any(Number) });
    await utimes(lockDir(app, root), new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    const held = await acquireLock(remote, app, { command: 'depl switch v2', root });
    await held.release();
  });
});

describe('release document', () => {
  it('starts empty, round-trips, and refuses a corrupt file with a hint', async () => {
    expect(await readReleaseDocument(remote, app, root)).toEqual(toDocument(emptyReleaseState(app)));
    const doc = toDocument({ ...emptyReleaseState(app), live: 'v2', previous: 'v1', history: [{ at: '2026-11-22T10:00:00Z', action: 'switch' as const, version: 'v2', by: 'me@here' }] });
    await writeReleaseDocument(remote, doc, root);
    expect(await readReleaseDocument(remote, app, root)).toEqual(doc);
    await writeFile(path.join(root, app, 'release.json'), '{"app": 1');
    await expect(readReleaseDocument(remote, app, root)).rejects.toThrow(/release.json is not valid JSON/);
    await writeFile(path.join(root, app, 'release.json'), '{"app": "x"}');
    await expect(readReleaseDocument(remote, app, root)).rejects.toThrow(/is not a depl release document \(live: /);
  });

  it('takes over the marks of an older depl\'s state.json', async () => {
    await rm(path.join(root, app, 'release.json'));
    await writeFile(path.join(root, app, 'state.json'), JSON.stringify({ app, live: 'v3', previous: 'v2', canary: null, history: [] }));
    expect(await readReleaseDocument(remote, app, root)).toMatchObject({ live: 'v3', previous: 'v2', canary: null, pending: null });
  });
});
