import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { awaitRemovalJobs, makeRemovalJobsDir, removeDockerObjects } from '../support/background-removal.js';

/**
 * The integration tests' cluster removal (test/support/background-removal.ts and remove-docker-objects.mjs)
 * against a stand-in Engine API on a unix socket: what it asks the engine, and that whatever is left fails the
 * caller or, for removals left running in the background, the end of the run.
 */
let dir: string;
let server: Server;
let requests: string[];
/** Answers by request: 204 unless the function says otherwise. */
let answer: (method: string, url: string) => { status: number; message?: string };
const savedDockerHost = process.env.DOCKER_HOST;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'depl-removal-test-'));
  requests = [];
  answer = () => ({ status: 204 });
  server = createServer((req, res) => {
    const url = (req.url ?? '').replace(/^\/v[\d.]+/, '');
    requests.push(`${req.method} ${url}`);
    const { status, message } = answer(req.method ?? '', url);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(message === undefined ? '' : JSON.stringify({ message }));
  });
  const socket = path.join(dir, 'engine.sock');
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  process.env.DOCKER_HOST = `unix://${socket}`;
});

afterEach(async () => {
  if (savedDockerHost === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = savedDockerHost;
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

const objects = { containers: ['c1', 'c2'], volumes: ['dt-x-node-1'], networks: ['n1'] };

describe('removing a test cluster by id', () => {
  it('removes the containers with their volumes, then the volumes, then the network, and nothing else', async () => {
    await removeDockerObjects('dt-x', objects, { wait: true });
    expect(requests.map((r) => r.replace(/\?.*/, ''))).toEqual(expect.arrayContaining(['DELETE /containers/c1', 'DELETE /containers/c2', 'DELETE /volumes/dt-x-node-1', 'DELETE /networks/n1']));
    expect(requests).toHaveLength(4);
    expect(requests.indexOf('DELETE /networks/n1')).toBe(3);
    expect(requests.filter((r) => r.startsWith('DELETE /containers/')).every((r) => /force=true/.test(r) && /v=true/.test(r))).toBe(true);
  });

  it('counts what is gone already as removed, and fails naming what the engine would not remove', async () => {
    answer = (_method, url) => (url.startsWith('/containers/c1') ? { status: 404, message: 'no such container' } : url.startsWith('/volumes/') ? { status: 409, message: 'volume is in use' } : { status: 204 });
    await expect(removeDockerObjects('dt-x', objects, { wait: true })).rejects.toThrow(/could not remove test cluster dt-x's Docker objects:\nvolume dt-x-node-1: .*volume is in use/);
  });

  it('waits for a network\'s last endpoint to leave before removing it', async () => {
    let refusals = 0;
    answer = (method, url) => {
      if (method === 'DELETE' && url.startsWith('/networks/') && refusals < 2) {
        refusals += 1;
        return { status: 403, message: 'error while removing network: network n1 has active endpoints' };
      }
      return method === 'GET' ? { status: 200, message: 'n1' } : { status: 204 };
    };
    await removeDockerObjects('dt-x', { containers: [], volumes: [], networks: ['n1'] }, { wait: true });
    expect(requests.filter((r) => r === 'DELETE /networks/n1')).toHaveLength(3);
  });
});

describe('the end of the run', () => {
  it('waits for the removals left running, and passes when they left nothing', async () => {
    const jobs = await makeRemovalJobsDir();
    await writeFile(path.join(jobs, 'dt-a.json'), '{}');
    await writeFile(path.join(jobs, 'dt-a.json.pid'), String(process.pid));
    const finished = awaitRemovalJobs(jobs);
    // this process stands for the job still running: the wait holds until its result is there
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await readdir(jobs)).toContain('dt-a.json');
    await writeFile(path.join(jobs, 'dt-a.json.result.json'), JSON.stringify({ label: 'dt-a', seconds: 1, failed: [] }));
    await finished;
    await expect(readdir(jobs)).rejects.toThrow(/ENOENT/);
  });

  it('fails the run naming what a removal left, and a removal that ended without a result', async () => {
    const jobs = await makeRemovalJobsDir();
    await writeFile(path.join(jobs, 'dt-a.json'), '{}');
    await writeFile(path.join(jobs, 'dt-a.json.result.json'), JSON.stringify({ label: 'dt-a', seconds: 3, failed: ['network n1: has active endpoints'] }));
    await writeFile(path.join(jobs, 'dt-b.json'), '{}');
    await writeFile(path.join(jobs, 'dt-b.json.log'), 'Error: connect ENOENT /var/run/docker.sock');
    const failure = await awaitRemovalJobs(jobs).catch((error: unknown) => error as Error);
    await rm(jobs, { recursive: true, force: true });
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/network n1: has active endpoints/);
    expect((failure as Error).message).toMatch(/dt-b\.json ended without a result; its output:\nError: connect ENOENT/);
  });
});
