import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { edgeReport } from '../../../src/apply/edge/site.js';
import { LocalRemote } from '../../../src/apply/local-remote.js';
import type { ExecOptions, ExecResult, Remote } from '../../../src/apply/remote.js';
import { cachedEdgeContainerCommand, EDGE_PROBE_NO_CONTAINER, edgeProbeCommand, parseCachedEdgeContainer } from '../../../src/plan/edge-service.js';
import { CONFIG_PROBE_PATH, PROBE_HOST, parseRawHttpAnswer, probeFromInsideCommand } from '../../../src/plan/nginx.js';
import type { Argv } from '../../../src/plan/shell.js';

/**
 * The probe answers only the edge container's loopback, so a cluster's edge is asked from inside its
 * container: the site's `probe` argv runs on the site's remote (the manager over SSH, or the renewal task's
 * Engine API). A stand-in edge on loopback tells the two ways of asking apart by the HTTP/1.0 that the
 * in-container request (bash's /dev/tcp) speaks.
 */
const cleanups: Array<() => Promise<void>> = [];

describe('the edge\'s probe is asked from inside its container', () => {
  let server: Server;
  let url: string;
  let port: number;
  const seen: string[] = [];
  beforeEach(async () => {
    seen.length = 0;
    server = createServer((req, res) => {
      const from = req.httpVersion === '1.0' ? 'inside' : 'outside';
      seen.push(`${from} ${req.headers.host} ${req.url}`);
      if (from === 'outside') res.writeHead(403).end('forbidden');
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('c0ffee00 1234abcd\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    url = `http://127.0.0.1:${port}`;
  });
  afterEach(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('runs the site\'s probe on its remote and never asks over the network', async () => {
    const remote: Remote = new LocalRemote();
    expect(await edgeReport({ url, remote, probe: probeFromInsideCommand(port) })).toEqual({ config: 'c0ffee00', routing: '1234abcd', status: 200 });
    const probe = `${PROBE_HOST} ${CONFIG_PROBE_PATH}`;
    expect(seen).toEqual([`inside ${probe}`]);
    // an edge without a probe argv (one on this machine) is asked over its URL
    expect(await edgeReport({ url, remote })).toMatchObject({ status: 403, routing: null });
    expect(seen).toEqual([`inside ${probe}`, `outside ${probe}`]);
  });

  it('on the manager: finds the edge service\'s running container and asks inside its network with nsenter', async () => {
    const { remote, calls, dir } = await managerWithDocker('c0ffee');
    expect(await edgeReport({ url: 'http://192.0.2.1:80', remote, probe: edgeProbeCommand('shop-edge', port, path.join(dir, 'run')) })).toMatchObject({ routing: '1234abcd', status: 200 });
    expect(calls()).toEqual([
      ['docker', 'ps', '-q', '--filter', 'label=com.docker.swarm.service.name=shop-edge', '--filter', 'status=running'],
      ['docker', 'inspect', '--format', '{{.State.Pid}}', 'c0ffee'],
      ['nsenter', '--target', '4242', '--net', 'bash', '-c'],
    ]);
    expect(seen).toEqual([`inside ${PROBE_HOST} ${CONFIG_PROBE_PATH}`]);
  });

  it('keeps the container\'s pid with its network namespace: while they still match, docker is not asked again', async () => {
    // the stand-in container's pid is this process's: its namespace is real, so the cache can be checked
    const { remote, calls, dir } = await managerWithDocker('c0ffee', process.pid);
    const probe = edgeProbeCommand('shop-edge', port, path.join(dir, 'run'));
    for (let i = 0; i < 3; i++) expect(await edgeReport({ url: 'http://192.0.2.1:80', remote, probe })).toMatchObject({ routing: '1234abcd', status: 200 });
    expect(calls().map((c) => c[0])).toEqual(['docker', 'docker', 'nsenter', 'nsenter', 'nsenter']);
    // a cached pid whose namespace is not the one recorded (the container was replaced) is looked up again
    await writeFile(path.join(dir, 'run', 'edge-container-shop-edge'), `${process.pid} net:[1] c0ffee\n`);
    expect(await edgeReport({ url: 'http://192.0.2.1:80', remote, probe })).toMatchObject({ status: 200 });
    expect(calls().map((c) => c[0]).slice(5)).toEqual(['docker', 'docker', 'nsenter']);
    expect(seen).toHaveLength(4);
  });

  it('the next command that opens the edge reads the container the probe found, with the files it asks for, in one command', async () => {
    const id = 'c0ffee00c0ffee00';
    const { remote, calls, dir } = await managerWithDocker(id, process.pid);
    const run = path.join(dir, 'run');
    const settings = path.join(dir, 'tls-render.json');
    await writeFile(settings, '{"certificates":[]}\n');
    const read = async (files: string[]) => {
      const result = await remote.exec(cachedEdgeContainerCommand('shop-edge', files, run));
      return parseCachedEdgeContainer(result.stdout, files.length);
    };
    // before any probe on this node: the files, and no container (the caller asks the Engine)
    expect(await read([settings, path.join(dir, 'missing')])).toEqual({ texts: ['{"certificates":[]}\n', null], container: null });
    await edgeReport({ url: 'http://192.0.2.1:80', remote, probe: edgeProbeCommand('shop-edge', port, run) });
    const asked = calls().length;
    expect(await read([settings])).toEqual({ texts: ['{"certificates":[]}\n'], container: id });
    expect(await read([])).toEqual({ texts: [], container: id });
    // docker is not asked for it
    expect(calls()).toHaveLength(asked);
    const [pid, ns] = readFileSync(path.join(run, 'edge-container-shop-edge'), 'utf8').trim().split(' ');
    // nor anything that is not a container id
    await writeFile(path.join(run, 'edge-container-shop-edge'), `${pid} ${ns} $(reboot)\n`);
    expect(await read([])).toEqual({ texts: [], container: null });
    // nor a container replaced since (its pid no longer has the namespace recorded)
    await writeFile(path.join(run, 'edge-container-shop-edge'), `${pid} net:[1] ${id}\n`);
    expect(await read([])).toEqual({ texts: [], container: null });
  });

  it('a cache line an earlier depl wrote (pid and namespace, no id) is looked up again, so the id is kept from then on', async () => {
    const { remote, calls, dir } = await managerWithDocker('c0ffee00c0ffee00', process.pid);
    const run = path.join(dir, 'run');
    const probe = edgeProbeCommand('shop-edge', port, run);
    await edgeReport({ url: 'http://192.0.2.1:80', remote, probe });
    const line = readFileSync(path.join(run, 'edge-container-shop-edge'), 'utf8').trim().split(' ');
    await writeFile(path.join(run, 'edge-container-shop-edge'), `${line[0]} ${line[1]}\n`);
    await edgeReport({ url: 'http://192.0.2.1:80', remote, probe });
    expect(calls().map((c) => c[0])).toEqual(['docker', 'docker', 'nsenter', 'docker', 'docker', 'nsenter']);
    expect(readFileSync(path.join(run, 'edge-container-shop-edge'), 'utf8').trim().split(' ')).toEqual(line);
  });

  it('says so when the edge has no running container', async () => {
    const { remote } = await managerWithDocker('');
    const result = await remote.exec(edgeProbeCommand('shop-edge', 80, '/nonexistent/depl'), { check: false });
    expect(result.code).toBe(EDGE_PROBE_NO_CONTAINER);
    expect(result.stderr).toContain('no running container of shop-edge');
    expect(await edgeReport({ url, remote, probe: edgeProbeCommand('shop-edge', port, '/nonexistent/depl') })).toMatchObject({ status: 0, routing: null });
    expect(seen).toEqual([]);
  });

  it('reads a raw HTTP answer', () => {
    expect(parseRawHttpAnswer('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc def\n')).toEqual({ status: 200, body: 'abc def\n' });
    expect(parseRawHttpAnswer('')).toEqual({ status: 0, body: '' });
  });
});

/**
 * This machine as the manager, with a `docker` first on PATH that answers `ps` with `container` and
 * `inspect` with a pid, and an `nsenter` that runs its command here (the stand-in edge listens on this
 * machine's loopback); calls() lists each call's first arguments.
 */
async function managerWithDocker(container: string, pid = 4242): Promise<{ remote: Remote; calls: () => string[][]; dir: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-probe-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const log = `printf "%s %s %s %s %s %s %s\\n" "$(basename "$0")" "$1" "$2" "$3" "$4" "$5" "$6" | sed "s/ *$//" >> "${dir}/calls"`;
  await writeFile(path.join(dir, 'docker'), `#!/bin/sh\n${log}\ncase "$1" in ps) ${container ? `echo ${container}` : 'true'};; inspect) echo ${pid};; esac\n`, { mode: 0o755 });
  await writeFile(path.join(dir, 'nsenter'), `#!/bin/sh\n${log}\nshift 3\nexec "$@"\n`, { mode: 0o755 });
  const local = new LocalRemote();
  const remote: Remote = {
    name: 'manager',
    exec: (argv: Argv, options?: ExecOptions): Promise<ExecResult> => local.exec(['env', `PATH=${dir}:${process.env.PATH ?? '/usr/bin:/bin'}`, ...argv], options),
    shell: (line, options) => local.shell(line, options),
    writeFileAtomic: (file, content, mode) => local.writeFileAtomic(file, content, mode),
    readFile: (file) => local.readFile(file),
    close: async () => {},
  };
  const calls = () => readFileSync(path.join(dir, 'calls'), 'utf8').trim().split('\n').map((line) => {
    const words = line.split(' ');
    return words[0] === 'nsenter' ? words.slice(0, 6) : words;
  });
  return { remote, calls, dir };
}
