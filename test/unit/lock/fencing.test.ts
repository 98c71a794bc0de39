import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FencedRemote } from '../../../src/apply/fenced-remote.js';
import { LocalRemote } from '../../../src/apply/local-remote.js';
import { acquireLock, forceReleaseLock } from '../../../src/apply/lock.js';
import { readReleaseDocument } from '../../../src/apply/release-store.js';
import { acquireLeaseCommand, describeFenceRefusal, fencedWriteCommand, leaseDir, parseFenceRefusal, parseLeaseAnswer } from '../../../src/plan/lock.js';
import { withRelease } from '../../../src/workflows/release.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

const local = new LocalRemote();
const holder = (command: string, token: string) => ({ holder: 'ann@laptop', host: 'laptop', pid: 4242, command, since: '2026-11-22T10:00:00.000Z', token });

describe('the fencing number of the cluster lease', () => {
  let root: string;
  let dir: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'depl-fence-'));
    dir = leaseDir(root, 'shop');
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const acquire = async (command: string, token: string) => parseLeaseAnswer((await local.exec(acquireLeaseCommand(dir, holder(command, token), 60))).stdout);
  const write = (fence: number, file: string, text: string) => local.exec(fencedWriteCommand(dir, fence, 60, `cat > '${file}'`), { stdin: text, check: false });

  it('grows with every acquisition, releases and breaks included', async () => {
    const fences: number[] = [];
    for (const token of ['a1', 'b2', 'c3']) {
      const answer = await acquire('switch v1', token);
      if (answer.status !== 'acquired') throw new Error(answer.status);
      fences.push(answer.fence);
      await rm(dir, { recursive: true });
    }
    await writeFile(`${dir}.fence`, 'garbage\n');
    const restarted = await acquire('switch v1', 'd4');
    expect(fences).toEqual([1, 2, 3]);
    expect(restarted).toMatchObject({ status: 'acquired', fence: 1 });
  });

  it('writes only while the lease carries the writer\'s number and has not expired', async () => {
    const first = await acquire('switch v1', 'a1');
    if (first.status !== 'acquired') throw new Error(first.status);
    const file = path.join(root, 'release.json');
    expect((await write(first.fence, file, 'one')).code).toBe(0);
    expect(await readFile(file, 'utf8')).toBe('one');

    // the lease ran out (its expiry is in the past): the holder may not write, though nobody took it yet
    await writeFile(`${dir}/expires`, '1000\n');
    const expired = await write(first.fence, file, 'two');
    expect(parseFenceRefusal(expired.code, expired.stderr)).toMatchObject({ reason: 'expired', holder: { command: 'switch v1' } });

    // another run takes the expired lease over: the old holder is refused, naming the new one; the new one writes
    const second = await acquire('switch v3', 'b2');
    expect(second).toMatchObject({ status: 'taken-over', fence: first.fence + 1 });
    const stale = await write(first.fence, file, 'three');
    const refusal = parseFenceRefusal(stale.code, stale.stderr);
    expect(refusal).toMatchObject({ reason: 'taken-over', holder: { command: 'switch v3' } });
    expect(describeFenceRefusal(refusal!)).toBe('its lease was taken over by ann@laptop (pid 4242, `switch v3`, since 2026-11-22T10:00:00.000Z)');
    expect((await write(first.fence + 1, file, 'four')).code).toBe(0);
    expect(await readFile(file, 'utf8')).toBe('four');

    await rm(dir, { recursive: true });
    const free = await write(first.fence + 1, file, 'five');
    expect(parseFenceRefusal(free.code, free.stderr)).toEqual({ reason: 'free', holder: null });
    expect(await readFile(file, 'utf8')).toBe('four');
  });

  it('passes the write\'s own failure through, and reads only its own refusal as one', async () => {
    await acquire('switch v1', 'a1');
    const failed = await local.exec(fencedWriteCommand(dir, 1, 60, 'echo nope >&2; exit 3'), { check: false });
    expect([failed.code, failed.stderr.trim(), parseFenceRefusal(failed.code, failed.stderr)]).toEqual([3, 'nope', null]);
    expect(parseFenceRefusal(75, 'something else')).toBeNull();
  });

  it('a fenced remote refuses with LOCK_LOST and writes nothing', async () => {
    await mkdir(path.join(root, 'shop'), { recursive: true });
    await acquire('switch v1', 'a1');
    const fenced = new FencedRemote(local, { dir, fence: 1, ttlSeconds: 60, command: 'switch v1', lost: false });
    const file = path.join(root, 'shop', 'state', 'release.json');
    await fenced.writeFileAtomic(file, '{"ok":1}\n', 0o600);
    expect(await readFile(file, 'utf8')).toBe('{"ok":1}\n');
    await rm(dir, { recursive: true });
    await acquire('switch v3', 'b2');
    await expect(fenced.writeFileAtomic(file, '{"ok":2}\n')).rejects.toMatchObject({ code: 'LOCK_LOST', message: expect.stringMatching(/taken over by ann@laptop \(pid 4242, `switch v3`/) });
    await expect(fenced.shell(`rm -f '${file}'`)).rejects.toMatchObject({ code: 'LOCK_LOST' });
    expect(await readFile(file, 'utf8')).toBe('{"ok":1}\n');
  });
});

describe('a release run that lost its lease on the fake cluster', () => {
  let fake: FakeCluster;
  beforeEach(async () => {
    fake = await startFakeCluster({ versions: ['v1', 'v2', 'v3'] });
  });
  afterEach(async () => {
    await fake.close();
  });

  it('cannot write its intent, the edge\'s routing or its record once another run took the lock over', async () => {
    const control = fake.control;
    await switchVersion(control, 'v1');
    const snapshot = async () => ({
      doc: await readReleaseDocument(control.stateRemote, fake.app, control.stateRoot),
      routing: await readFile(`${fake.dir}/edge/routing`, 'utf8'),
      served: fake.served(),
    });
    const before = await snapshot();
    const stalled = withRelease(control, 'depl switch v2', {}, async (session) => {
      // this run stalls past its lease; an operator breaks the lock and another run takes it
      await forceReleaseLock(control.stateRemote, fake.app, control.stateRoot);
      const other = await acquireLock(fake.freshControl().stateRemote, fake.app, { command: 'depl switch v3', root: control.stateRoot });
      try {
        return await session.change({ kind: 'switch', version: 'v2' });
      } finally {
        await other.release();
      }
    });
    await expect(stalled).rejects.toMatchObject({ code: 'LOCK_LOST', message: expect.stringMatching(/taken over by .*`depl switch v3`/) });
    expect(await snapshot()).toEqual(before);
    expect((await fake.get(fake.domain)).version).toBe('v1');
  });
});
