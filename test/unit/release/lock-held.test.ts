import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock, lockDir, lockStatus } from '../../../src/apply/lock.js';
import { readReleaseDocument } from '../../../src/apply/release-store.js';
import { acquireLeaseCommand } from '../../../src/plan/lock.js';
import type { ClusterPort } from '../../../src/workflows/cluster-port.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * A release change meeting a cluster lock another run holds, on the fake cluster (its lease is the real
 * shell script in a real `sh`): refused at once naming the holder, or, with a lock wait, taken over once the
 * holder's lease runs out. Was proven on a real node over SSH (cluster-lock and edge-nginx integration
 * tests); the lease script and its refusal are the same there, only the transport differs.
 */
let fake: FakeCluster;
let control: ClusterPort;
let warnings: string[];

beforeEach(async () => {
  fake = await startFakeCluster({ versions: ['v1', 'v2'] });
  warnings = [];
  control = { ...fake.control, log: { ...fake.control.log, warn: (message: string) => warnings.push(message) } };
  await switchVersion(control, 'v1');
});
afterEach(async () => {
  await fake.close();
});

const root = () => control.stateRoot!;
const recorded = () => readFile(`${root()}/${fake.app}/release.json`, 'utf8');
/** A holder on another machine that went away: its pid means nothing here, only its lease can end it. */
const gone = { holder: 'ops@laptop-gone', host: 'laptop-gone', pid: 4242, command: 'switch v2', since: new Date().toISOString(), token: 'deadbeefdeadbeef' };

describe('a release change while another run holds the cluster lock', () => {
  it('is refused at once, naming the holder and its lease, and changes nothing', async () => {
    const held = await acquireLock(control.stateRemote, fake.app, { command: 'depl buildinst', root: root() });
    const before = await recorded();
    try {
      await expect(switchVersion(control, 'v2')).rejects.toMatchObject({
        code: 'LOCKED',
        exitCode: 1,
        message: expect.stringMatching(/^the cluster lock is held by .+@.+ \(pid \d+, `depl buildinst`, since .+, lease expires in \d+ s\)$/),
      });
    } finally {
      await held.release();
    }
    expect(await recorded()).toBe(before);
    expect((await fake.get(fake.domain)).version).toBe('v1');
  });

  it('with a lock wait, waits for the lease of a holder that went away to run out, takes it over saying whose, and switches', async () => {
    await fake.control.stateRemote.exec(acquireLeaseCommand(lockDir(fake.app, root()), gone, 300));
    await expect(switchVersion(control, 'v2')).rejects.toThrow(/the cluster lock is held by ops@laptop-gone \(pid 4242, `switch v2`, since .*, lease expires in \d+ s\)/);
    // its last renewal: it then went away, so the lease runs out in a second
    await fake.control.stateRemote.exec(acquireLeaseCommand(lockDir(fake.app, root()), gone, 1, gone.token));
    expect(await switchVersion({ ...control, lockWaitMs: 30_000 }, 'v2')).toMatchObject({ live: 'v2', previous: 'v1' });
    expect(warnings).toContainEqual(expect.stringMatching(/^took over the cluster lock: the lease of ops@laptop-gone \(pid 4242, `switch v2`/));
    expect(await lockStatus(control.stateRemote, fake.app, root())).toBeNull();
    expect(await readReleaseDocument(control.stateRemote, fake.app, root())).toMatchObject({ live: 'v2', previous: 'v1' });
    expect((await fake.get(fake.domain)).version).toBe('v2');
  });
});
