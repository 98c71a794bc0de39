import { afterEach, beforeEach, expect, it } from 'vitest';
import type { Remote } from '../../../src/apply/remote.js';
import { CONFIG_PROBE_PATH, PROBE_HOST, PROBE_SCRIPT } from '../../../src/plan/nginx.js';
import type { ClusterPort } from '../../../src/workflows/cluster-port.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * What a `depl switch` asks of the manager, on the fake cluster: every call is a round trip over the one SSH
 * connection on a real cluster (a channel and a process on the node), so each one is time the operator waits.
 * The plan of round trips is pinned here as data: the lock taken with the release state read in the same
 * command, the change written in two fenced steps (the intent with the routing table, then the record), the lock
 * given back. A new round trip in the switch path has to show up here.
 */
let fake: FakeCluster;

beforeEach(async () => {
  fake = await startFakeCluster({ versions: ['v1', 'v2'] });
  await switchVersion(fake.freshControl(), 'v1');
});
afterEach(async () => {
  await fake.close();
});

/**
 * The port a depl process builds, with every call to the manager (and to the swarm's listing) recorded.
 * `probed`: the edge is asked as on a cluster, by a command on the manager (src/apply/edge/site.ts `probe`; here
 * the same raw request from this machine's bash to the fake edge) instead of over HTTP.
 */
function recorded(options: { probed?: boolean } = {}): { control: ClusterPort; calls: string[] } {
  const calls: string[] = [];
  const base = fake.freshControl();
  const probe = ['bash', '-c', PROBE_SCRIPT, 'depl-probe', new URL(base.site.url).port, CONFIG_PROBE_PATH, PROBE_HOST];
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
    ...base, stateRemote: remote, site: { ...base.site, remote, ...(options.probed === true ? { probe } : {}) },
    installed: () => { calls.push('installed'); return base.installed(); },
  };
  return { control, calls };
}

/** Each recorded call as the step it is: the plan of round trips. */
function plan(calls: string[]): string[] {
  return calls.map((call) => {
    if (call === 'installed') return 'list installed versions (swarm)';
    if (call.startsWith('exec sh -c') && call.includes(' depl-lock ')) {
      if (call.includes('mkdir "$1" 2>/dev/null')) return `lock + read ${call.match(/\/state\/shop\/[\w.]+\.json/g)?.join(' ') ?? 'nothing'}`;
      if (call.includes('rm -rf "$1"; echo released')) return 'unlock';
    }
    if (call.startsWith('shell ') && call.includes('depl-fence')) {
      if (call.includes('/routing.next') && call.includes('release.json')) return `fenced write intent + routing${call.includes('depl-probe') ? ' + edge probe' : ''}`;
      if (/release\.json'*$/.test(call)) return 'fenced write release.json';
      if (call.includes('/routing.next')) return 'fenced write routing';
    }
    if (call.startsWith('exec ') && call.includes('depl-probe')) return 'edge probe';
    if (call.startsWith('read ')) return call;
    return `other: ${call.slice(0, 80)}`;
  });
}

it('a switch takes the lock and reads the release state in one round trip, and writes its intent with the routing table: four to the manager in all', async () => {
  const { control, calls } = recorded();
  expect(await switchVersion(control, 'v2')).toMatchObject({ live: 'v2', previous: 'v1' });
  expect(plan(calls)).toEqual([
    'lock + read /state/shop/release.json /state/shop/installing.json',
    'list installed versions (swarm)',
    'fenced write intent + routing',
    'fenced write release.json',
    'unlock',
  ]);
});

it('on a cluster the command that writes the intent and the routing table also asks the edge, which confirms it there', async () => {
  const { control, calls } = recorded({ probed: true });
  expect(await switchVersion(control, 'v2')).toMatchObject({ live: 'v2', previous: 'v1' });
  expect(plan(calls)).toEqual([
    'lock + read /state/shop/release.json /state/shop/installing.json',
    'edge probe',
    'list installed versions (swarm)',
    'fenced write intent + routing + edge probe',
    'fenced write release.json',
    'unlock',
  ]);
  expect((await fake.get(fake.domain)).version).toBe('v2');
});

it('a switch to the version already live reads the state with the lock and changes no edge file', async () => {
  const { control, calls } = recorded();
  expect(await switchVersion(control, 'v1')).toMatchObject({ live: 'v1' });
  // the record is a history entry: no intent, no routing table
  expect(plan(calls)).toEqual([
    'lock + read /state/shop/release.json /state/shop/installing.json',
    'list installed versions (swarm)',
    'fenced write release.json',
    'unlock',
  ]);
});
