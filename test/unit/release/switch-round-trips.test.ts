import { afterEach, beforeEach, expect, it } from 'vitest';
import type { Remote } from '../../../src/apply/remote.js';
import type { ClusterPort } from '../../../src/workflows/cluster-port.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * What a `depl switch` asks of the manager, on the fake cluster: every call is a round trip over the one SSH
 * connection on a real cluster (a channel and a process on the node), so each one is time the operator waits.
 * The release state is read once, the lock taken and given back once, the change written in three steps
 * (intent, routing table, record): a new round trip in the switch path has to show up here.
 */
let fake: FakeCluster;

beforeEach(async () => {
  fake = await startFakeCluster({ versions: ['v1', 'v2'] });
  await switchVersion(fake.freshControl(), 'v1');
});
afterEach(async () => {
  await fake.close();
});

/** The port a depl process builds, with every call to the manager (and to the swarm's listing) recorded. */
function recorded(): { control: ClusterPort; calls: string[] } {
  const calls: string[] = [];
  const base = fake.freshControl();
  const inner = base.stateRemote;
  const short = (s: string) => s.replaceAll(fake.dir, '');
  const remote: Remote = {
    name: inner.name,
    exec: (argv, options) => { calls.push(`exec ${short(argv.join(' '))}`); return inner.exec(argv, options); },
    shell: (line, options) => { calls.push(`shell ${short(line)}`); return inner.shell(line, options); },
    writeFileAtomic: (file, content, mode) => { calls.push(`write ${short(file)}`); return inner.writeFileAtomic(file, content, mode); },
    readFile: (file) => { calls.push(`read ${short(file)}`); return inner.readFile(file); },
    close: () => inner.close(),
  };
  const control: ClusterPort = {
    ...base, stateRemote: remote, site: { ...base.site, remote },
    installed: () => { calls.push('installed'); return base.installed(); },
  };
  return { control, calls };
}

it('a switch reads the release state once and makes seven round trips to the manager', async () => {
  const { control, calls } = recorded();
  expect(await switchVersion(control, 'v2')).toMatchObject({ live: 'v2', previous: 'v1' });
  expect(calls.filter((c) => c === 'read /state/shop/release.json')).toHaveLength(1);
  expect(calls.filter((c) => c === 'read /state/shop/installing.json')).toHaveLength(1);
  expect(calls.filter((c) => c === 'installed')).toHaveLength(1);
  // lock, the two reads, intent, routing table, record, unlock (the edge's answers come over HTTP here)
  expect(calls.filter((c) => c !== 'installed')).toHaveLength(7);
  expect(calls.filter((c) => c.startsWith('shell ') && c.includes('/release.json'))).toHaveLength(2);
  expect(calls.filter((c) => c.startsWith('shell ') && c.includes('/routing'))).toHaveLength(1);
});

it('a switch to the version already live reads the state once and changes no edge file', async () => {
  const { control, calls } = recorded();
  expect(await switchVersion(control, 'v1')).toMatchObject({ live: 'v1' });
  expect(calls.filter((c) => c === 'read /state/shop/release.json')).toHaveLength(1);
  // lock, the two reads, record (a history entry), unlock: no intent, no routing table
  expect(calls.filter((c) => c.includes('/routing'))).toEqual([]);
  expect(calls.filter((c) => c !== 'installed')).toHaveLength(5);
});
