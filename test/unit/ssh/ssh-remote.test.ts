import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateParseableKeyPair } from '../../../src/apply/ssh-keypair.js';
import { fingerprint, KnownHosts } from '../../../src/apply/known-hosts.js';
import { silentLogger } from '../../../src/util/log.js';
import { connectSsh, SshPool } from '../../../src/apply/ssh.js';
import { isDeplError } from '../../../src/errors.js';

const clientKey = generateParseableKeyPair();
const clientPublic = (ssh2.utils.parseKey(clientKey.private) as ssh2.ParsedKey).getPublicSSH();

/** An in-process SSH server on loopback: runs nothing, answers each exec with the command line it got. */
function startServer(hostKey = generateParseableKeyPair().private, port = 0): Promise<{ server: ssh2.Server; port: number; execs: string[]; authMethods: string[] }> {
  const execs: string[] = [];
  const authMethods: string[] = [];
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
    let user = '';
    client.on('authentication', (ctx) => {
      user = ctx.username;
      authMethods.push(ctx.method);
      const authorised = ctx.method === 'publickey' && ctx.key.data.equals(clientPublic);
      if (authorised && ['root', 'ubuntu', 'asks', 'shell'].includes(ctx.username)) return ctx.accept();
      ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        accept().on('exec', (acceptExec, _reject, info) => {
          const stream = acceptExec();
          execs.push(info.command);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            // user `shell`: scripts run in a real shell on this machine, so their output is what a node's would be
            if (user === 'shell' && info.command.startsWith('sudo -n -- sh ')) {
              const child = spawn('sh', ['-c', info.command.slice('sudo -n -- '.length)], { stdio: ['ignore', 'pipe', 'pipe'] });
              child.stdout.pipe(stream, { end: false });
              child.stderr.pipe(stream.stderr, { end: false });
              child.on('close', (code) => { stream.exit(code ?? 1); stream.end(); });
              return;
            }
            if (user === 'asks' && info.command === 'sudo -n -- true') {
              stream.stderr.write('sudo: a password is required\n');
              stream.exit(1);
              stream.end();
              return;
            }
            stream.write(`ran: ${info.command}\n`);
            if (chunks.length > 0) stream.write(`stdin: ${Buffer.concat(chunks).toString()}\n`);
            if (info.command.includes('fail')) stream.stderr.write('it failed\n');
            stream.exit(info.command.includes('fail') ? 3 : 0);
            stream.end();
          });
        });
      });
    });
    client.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port, execs, authMethods })));
}

describe('SSH remote', () => {
  let dir: string;
  let knownHosts: KnownHosts;
  const servers: ssh2.Server[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-ssh-'));
    knownHosts = new KnownHosts(path.join(dir, 'known_hosts'));
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) s.close();
    await rm(dir, { recursive: true, force: true });
  });

  const target = (port: number) => ({ name: 'node-1', host: '127.0.0.1', port, user: 'root', privateKey: clientKey.private });

  it('runs argv quoted for the remote shell, passes stdin, and records the host key on first use', async () => {
    const { server, port, execs } = await startServer();
    servers.push(server);
    const remote = await connectSsh(target(port), { knownHosts, waitMs: 5000 });
    const result = await remote.exec(['echo', "it's here", '$HOME'], { stdin: 'abc' });
    expect(execs).toEqual([`echo 'it'\\''s here' '$HOME'`]);
    expect(result).toEqual({ code: 0, stdout: `ran: echo 'it'\\''s here' '$HOME'\nstdin: abc\n`, stderr: '' });
    expect(await readFile(knownHosts.file, 'utf8')).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${port} ssh-ed25519 `));
    await remote.close();
  });

  it('offers its key without first trying the `none` method (a round trip every node refuses)', async () => {
    const { server, port, authMethods } = await startServer();
    servers.push(server);
    await (await connectSsh(target(port), { knownHosts, waitMs: 5000 })).close();
    // ssh2 asks whether the key would do, then signs: both are publickey
    expect(authMethods).toEqual(['publickey', 'publickey']);
  });

  it('reads several files in one command, null for those that do not exist, and refuses one holding a NUL', async () => {
    const { server, port, execs } = await startServer();
    servers.push(server);
    await writeFile(path.join(dir, 'a.json'), '{"a": 1}\n');
    await writeFile(path.join(dir, 'empty'), '');
    await writeFile(path.join(dir, 'binary'), Buffer.from([1, 0, 2]));
    const remote = await connectSsh({ ...target(port), user: 'shell' }, { knownHosts, waitMs: 5000 });
    const files = [path.join(dir, 'a.json'), path.join(dir, 'missing'), path.join(dir, 'empty')];
    expect(await remote.readFiles(files)).toEqual(['{"a": 1}\n', null, '']);
    expect(execs.filter((c) => c !== 'sudo -n -- true')).toHaveLength(1);
    await expect(remote.readFiles([path.join(dir, 'a.json'), path.join(dir, 'binary')])).rejects.toMatchObject({ code: 'REMOTE_READ_FAILED' });
    await expect(remote.readFiles([path.join(dir, 'a.json'), dir])).rejects.toThrow(/cannot read .*Is a directory/);
    await remote.close();
  });

  it('throws an OperationError naming the node on a failed command, or returns it with check: false', async () => {
    const { server, port } = await startServer();
    servers.push(server);
    const remote = await connectSsh(target(port), { knownHosts, waitMs: 5000 });
    await expect(remote.exec(['fail'])).rejects.toThrow(/node-1 \(127\.0\.0\.1\): `fail` failed \(exit 3\): it failed/);
    expect((await remote.exec(['fail'], { check: false })).code).toBe(3);
    await remote.close();
  });

  it('refuses a changed host key at once, naming the known_hosts file to fix', async () => {
    const first = await startServer();
    servers.push(first.server);
    await (await connectSsh(target(first.port), { knownHosts, waitMs: 5000 })).close();
    first.server.close();
    const second = await startServer(undefined, first.port);
    servers.push(second.server);
    const started = Date.now();
    const error = await connectSsh(target(first.port), { knownHosts, waitMs: 20_000 }).then(() => null, (e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(isDeplError(error) && error.code).toBe('HOST_KEY_CHANGED');
    expect((error as Error).message).toContain(knownHosts.file);
    expect((error as Error).message).toContain('node-1 (127.0.0.1)');
    expect(isDeplError(error) && error.hint).toContain(`ssh-keygen -R '[127.0.0.1]:${first.port}' -f ${knownHosts.file}`);
  });

  it('runs the same command line through sudo -n for a login user that is not root', async () => {
    const { server, port, execs } = await startServer();
    servers.push(server);
    const remote = await connectSsh({ ...target(port), user: 'ubuntu' }, { knownHosts, waitMs: 5000 });
    await remote.exec(['docker', 'info']);
    await remote.shell('a | b');
    expect(execs).toEqual(['sudo -n -- true', 'sudo -n -- docker info', "sudo -n -- sh -c 'a | b'"]);
    await remote.close();
  });

  it('stops at once, naming the node and the user, when sudo asks for a password', async () => {
    const { server, port } = await startServer();
    servers.push(server);
    const error = await connectSsh({ ...target(port), user: 'asks' }, { knownHosts, waitMs: 20_000 }).then(() => null, (e: unknown) => e);
    expect(isDeplError(error) && error.code).toBe('SUDO_PASSWORD');
    expect((error as Error).message).toMatch(/^node-1 \(127\.0\.0\.1\): sudo asks asks for a password/);
  });

  it('fails fast on a refused key, naming the key offered and the user', async () => {
    const { server, port } = await startServer();
    servers.push(server);
    const other = generateParseableKeyPair();
    const started = Date.now();
    const error = await connectSsh({ ...target(port), user: 'ubuntu', privateKey: other.private, keyFile: '/p/.depl/other_key' }, { knownHosts, waitMs: 60_000 })
      .then(() => null, (e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(isDeplError(error) && error.code).toBe('SSH_AUTH_FAILED');
    const parsed = ssh2.utils.parseKey(other.private) as ssh2.ParsedKey;
    expect((error as Error).message).toBe(`node-1 (ubuntu@127.0.0.1:${port}): SSH authentication failed: the node refused /p/.depl/other_key ` +
      `(ssh-ed25519 ${fingerprint(parsed.getPublicSSH())}) for user ubuntu`);
    expect(isDeplError(error) && error.hint).toContain('~ubuntu/.ssh/authorized_keys');
  });

  it('records one host key on first use when connections race, and prints its fingerprint once', async () => {
    const { server, port } = await startServer();
    servers.push(server);
    const lines: string[] = [];
    const log = { ...silentLogger, info: (m: string) => lines.push(m) };
    // two "processes": separate KnownHosts objects on one file
    const remotes = await Promise.all(Array.from({ length: 4 }, (_, i) =>
      connectSsh(target(port), { knownHosts: new KnownHosts(knownHosts.file), waitMs: 5000, log: i % 2 === 0 ? log : undefined })));
    await Promise.all(remotes.map((r) => r.close()));
    expect((await readFile(knownHosts.file, 'utf8')).trim().split('\n')).toHaveLength(1);
    expect(lines.length).toBeLessThanOrEqual(1);
  });

  it('waits with backoff for a node whose sshd starts late', async () => {
    const probe = await startServer();
    const port = probe.port;
    probe.server.close();
    setTimeout(() => { void startServer(undefined, port).then((s) => servers.push(s.server)); }, 1200);
    const remote = await connectSsh(target(port), { knownHosts, waitMs: 10_000 });
    expect((await remote.exec(['true'])).code).toBe(0);
    await remote.close();
  });

  it('gives up after the wait with a message that says what was tried and what to check', async () => {
    const probe = await startServer();
    probe.server.close();
    const error = await connectSsh(target(probe.port), { knownHosts, waitMs: 1500, waitHint: 'look at docker logs' }).then(() => null, (e: unknown) => e);
    expect(isDeplError(error) && error.code).toBe('SSH_TIMEOUT');
    expect((error as Error).message).toMatch(/node-1 \(root@127\.0\.0\.1:\d+\): SSH did not answer within 2 s \(\d+ attempts; last error: .*ECONNREFUSED/);
    expect(isDeplError(error) && error.hint).toBe('look at docker logs');
  });

  it('reuses one connection per node in a pool', async () => {
    const { server, port } = await startServer();
    servers.push(server);
    let connections = 0;
    server.on('connection', () => { connections += 1; });
    const pool = new SshPool({ user: 'root', port, privateKey: clientKey.private, knownHosts, waitMs: 5000 });
    const [a, b] = await Promise.all([pool.remote({ name: 'n', address: '127.0.0.1' }), pool.remote({ name: 'n', address: '127.0.0.1' })]);
    await a.exec(['true']);
    const c = await pool.remote({ name: 'n', address: '127.0.0.1' });
    expect(a).toBe(b);
    expect(a).toBe(c);
    expect(connections).toBe(1);
    await pool.closeAll();
  });
});
