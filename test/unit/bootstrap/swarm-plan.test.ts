import { describe, expect, it } from 'vitest';
import {
  decideManager, decideWorker, desiredNodeLabels, ensureDockerCommand, missingLabels, nodeLabelAddCommand,
  overlayNetworkCreateCommand, overlayNetworkName, parseEnsureDocker, parseNodeLabels, parseNodeList, parseSwarmInfo,
  staleNodeIds, swarmInfoCommand, swarmInitCommand, swarmJoinRequest, type SwarmNodeRow,
} from '../../../src/plan/bootstrap.js';
import { shellLine } from '../../../src/plan/shell.js';

const managerInfo = JSON.stringify({ NodeID: 'm1', NodeAddr: '10.0.0.11', LocalNodeState: 'active', ControlAvailable: true, Cluster: { ID: 'c1' }, RemoteManagers: [{ NodeID: 'm1', Addr: '10.0.0.11:2377' }] });
const workerInfo = JSON.stringify({ NodeID: 'w2', NodeAddr: '10.0.0.12', LocalNodeState: 'active', ControlAvailable: false, Cluster: null, RemoteManagers: [{ NodeID: 'm1', Addr: '10.0.0.11:2377' }] });
const inactiveInfo = JSON.stringify({ NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, RemoteManagers: null });

const row = (id: string, hostname: string, status = 'Ready'): SwarmNodeRow => ({ id, hostname, status, availability: 'Active', managerStatus: '' });

describe('swarm bootstrap commands', () => {
  it('initialises the swarm advertising the node address', () => {
    expect(shellLine(swarmInitCommand('192.168.77.11'))).toBe('docker swarm init --advertise-addr 192.168.77.11 --listen-addr 192.168.77.11:2377');
  });

  it('joins a worker to the manager on port 2377 with the token, as an Engine API request body (no command line)', () => {
    expect(swarmJoinRequest('SWMTKN-1-abc', '192.168.77.11', '192.168.77.12')).toEqual({
      ListenAddr: '192.168.77.12:2377', AdvertiseAddr: '192.168.77.12', RemoteAddrs: ['192.168.77.11:2377'], JoinToken: 'SWMTKN-1-abc',
    });
  });

  it('installs docker.io with apt only when docker is missing, then waits for dockerd', () => {
    const [sh, flag, script] = ensureDockerCommand();
    expect([sh, flag]).toEqual(['sh', '-c']);
    expect(script).toMatch(/if command -v docker .*then\s+echo docker=present/s);
    expect(script).toContain('apt-get install -y -qq --no-install-recommends docker.io');
    expect(script).toMatch(/until docker info/);
    expect(parseEnsureDocker('docker=present\ndockerd=ready\n')).toEqual({ installed: false, started: false });
    expect(parseEnsureDocker('docker=installed\ndockerd=started\ndockerd=ready\n')).toEqual({ installed: true, started: true });
  });

  it('creates the app overlay network as attachable', () => {
    expect(overlayNetworkName('crawler')).toBe('crawler-net');
    expect(shellLine(overlayNetworkCreateCommand('crawler', { encrypted: false }))).toBe('docker network create --driver overlay --attachable --label depl.app=crawler crawler-net');
  });
});

describe('swarm facts', () => {
  it('reads a manager, a worker and an inactive node from `docker info`', () => {
    expect(parseSwarmInfo(managerInfo)).toEqual({ state: 'active', nodeId: 'm1', nodeAddr: '10.0.0.11', isManager: true, clusterId: 'c1', managerAddrs: ['10.0.0.11:2377'], hostname: '' });
    expect(parseSwarmInfo(`{"Name":"node-1","Swarm":${managerInfo}}`)).toMatchObject({ state: 'active', nodeId: 'm1', hostname: 'node-1' });
    expect(shellLine(swarmInfoCommand())).toBe(`docker info --format '{"Name":{{json .Name}},"Swarm":{{json .Swarm}}}'`);
    expect(parseSwarmInfo(workerInfo)).toMatchObject({ state: 'active', nodeId: 'w2', isManager: false, clusterId: '' });
    expect(parseSwarmInfo(inactiveInfo)).toMatchObject({ state: 'inactive', managerAddrs: [] });
  });

  it('reads `docker node ls` JSON lines', () => {
    const out = '{"Availability":"Active","Hostname":"node-1","ID":"m1","ManagerStatus":"Leader","Status":"Ready"}\n{"Availability":"Drain","Hostname":"node-2","ID":"w2","ManagerStatus":"","Status":"Down"}\n';
    expect(parseNodeList(out)).toEqual([
      { id: 'm1', hostname: 'node-1', status: 'Ready', availability: 'Active', managerStatus: 'Leader' },
      { id: 'w2', hostname: 'node-2', status: 'Down', availability: 'Drain', managerStatus: '' },
    ]);
  });

  it('reads labels per node id, with null labels as none', () => {
    const labels = parseNodeLabels('m1 {"depl.edge":"true"}\nw2 null\n');
    expect(labels.get('m1')).toEqual({ 'depl.edge': 'true' });
    expect(labels.get('w2')).toEqual({});
  });
});

describe('swarm decisions', () => {
  it('inits on an inactive first node, keeps an active manager, refuses a worker of another swarm', () => {
    expect(decideManager(parseSwarmInfo(inactiveInfo))).toBe('init');
    expect(decideManager(parseSwarmInfo(managerInfo))).toBe('ok');
    expect(decideManager(parseSwarmInfo(workerInfo))).toEqual({ refuse: expect.stringContaining('worker of another swarm') });
    expect(decideManager({ ...parseSwarmInfo(managerInfo), state: 'locked' })).toEqual({ refuse: expect.stringContaining('unlock') });
  });

  it('leaves a listed worker alone, joins an inactive one, rejoins one the manager does not know', () => {
    const list = [row('m1', 'node-1'), row('w2', 'node-2')];
    expect(decideWorker(parseSwarmInfo(workerInfo), list)).toBe('ok');
    expect(decideWorker(parseSwarmInfo(inactiveInfo), list)).toBe('join');
    expect(decideWorker(parseSwarmInfo(workerInfo), [row('m9', 'node-1')])).toBe('rejoin');
    expect(decideWorker({ ...parseSwarmInfo(workerInfo), state: 'error' }, list)).toBe('rejoin');
  });

  it('finds stale entries: down unknowns, former ids, and an old entry under a live node\'s hostname', () => {
    const list = [row('m1', 'node-1'), row('new3', 'node-3'), row('old3', 'node-3', 'Ready'), row('gone', 'node-9', 'Down'), row('other', 'laptop', 'Ready')];
    expect(staleNodeIds(list, ['m1', 'new3'])).toEqual(['old3', 'gone']);
    expect(staleNodeIds(list, ['m1', 'new3'], ['other'])).toEqual(['old3', 'gone', 'other']);
    expect(staleNodeIds([row('m1', 'node-1')], ['m1'])).toEqual([]);
  });

  it('labels the manager as edge, and adds only labels that are missing or different', () => {
    expect(desiredNodeLabels('node-1', true)).toEqual({ 'depl.node': 'node-1', 'depl.edge': 'true' });
    expect(desiredNodeLabels('node-2', false)).toEqual({ 'depl.node': 'node-2' });
    expect(missingLabels({ 'depl.node': 'node-1', 'depl.edge': 'true', other: 'x' }, desiredNodeLabels('node-1', true))).toBeNull();
    expect(missingLabels({ 'depl.node': 'node-7' }, desiredNodeLabels('node-1', true))).toEqual({ 'depl.node': 'node-1', 'depl.edge': 'true' });
    expect(nodeLabelAddCommand('m1', { 'depl.edge': 'true' })).toEqual(['docker', 'node', 'update', '--label-add', 'depl.edge=true', 'm1']);
  });
});
