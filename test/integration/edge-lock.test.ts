import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readState, writeState, emptyState } from '../../src/apply/cluster-state.js';
import { LocalRemote } from '../../src/apply/local-remote.js';
import { acquireLock, forceReleaseLock, lockStatus, withLock } from '../../src/apply/lock.js';

/** The cluster lock and state files with real mkdir/rename on this machine (the manager does the same over SSH). */
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
  it('lets one run in and tells the next who holds it', async () => {
    const first = await acquireLock(remote, app, { command: 'depl switch v2', root });
    await expect(acquireLock(remote, app, { command: 'depl buildinst', root })).rejects.toThrow(/the cluster lock is held by .+@.+ \(pid \d+, `depl switch v2`, since \d{4}-/);
    expect(await lockStatus(remote, app, root)).toMatchObject({ command: 'depl switch v2', pid: process.pid });
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
    expect(await forceReleaseLock(remote, app, root)).toMatchObject({ command: 'depl switch v1' });
    const next = await acquireLock(remote, app, { command: 'depl switch v2', root });
    await stale.release();
    expect(await lockStatus(remote, app, root)).toMatchObject({ command: 'depl switch v2' });
    await next.release();
  });
});

describe('cluster state', () => {
  it('starts empty, round-trips, and refuses a corrupt file with a hint', async () => {
    expect(await readState(remote, app, root)).toEqual(emptyState(app));
    const state = { ...emptyState(app), live: 'v2', previous: 'v1', history: [{ at: '2026-11-22T10:00:00Z', action: 'switch' as const, version: 'v2', by: 'me@here' }] };
    await writeState(remote, app, state, root);
    expect(await readState(remote, app, root)).toEqual(state);
    await writeFile(path.join(root, app, 'state.json'), '{"app": 1');
    await expect(readState(remote, app, root)).rejects.toThrow(/state.json is not valid JSON/);
    await writeFile(path.join(root, app, 'state.json'), '{"app": "x"}');
    await expect(readState(remote, app, root)).rejects.toThrow(/is not a depl cluster state/);
  });
});
