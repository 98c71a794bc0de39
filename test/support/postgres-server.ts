import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import { createLogger } from '../../src/util/log.js';
import { freePort } from './redis.js';

/**
 * A real PostgreSQL server (Debian's postgresql package, installed when missing) for one test file: its own
 * data folder and a free loopback port, password logins (scram) for a superuser, run as the `postgres` user (the
 * server refuses root). No container and no cluster: a few seconds to start. Stopped by its pid.
 */
export interface TestPostgres {
  port: number;
  /** The superuser and where its password file is (readable by the tests' shell lines). */
  user: string;
  passwordFile: string;
  /** A folder for the test's own files, removed with the server. */
  dir: string;
  /** `PATH` with the server's client programs (psql, pg_dump) first. */
  path: string;
  stop(): Promise<void>;
}

async function binDir(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = async () => (await readdir(root).catch(() => [] as string[])).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  if ((await versions()).length === 0) await ensureDebianPackages(['postgresql'], createLogger());
  const found = (await versions())[0];
  if (found === undefined) throw new Error('no PostgreSQL server under /usr/lib/postgresql: apt-get install postgresql');
  return path.join(root, found, 'bin');
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = await binDir();
  const dir = await mkdtemp(path.join(tmpdir(), 'depl-pg-'));
  const data = path.join(dir, 'data');
  const passwordFile = path.join(dir, 'admin-password');
  await writeFile(passwordFile, 'admin-pw-for-tests');
  const { uid, gid } = await postgresUser();
  await chmod(dir, 0o755);
  await chown(passwordFile, uid, gid);
  // setpriv execs the program itself (one pid to stop); the server refuses to run as root
  const asPostgres = (args: string[]) => execa('setpriv', [...AS_POSTGRES, ...args]);
  await mkdir(data, { mode: 0o700 });
  await chown(data, uid, gid);
  await asPostgres([path.join(bin, 'initdb'), '-D', data, '-U', 'admin', `--pwfile=${passwordFile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const child: ChildProcess = spawn('setpriv', [...AS_POSTGRES, path.join(bin, 'postgres'), '-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-k', data, '-c', 'fsync=off'], { stdio: 'ignore' });
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  const deadline = Date.now() + 15_000;
  while ((await execa(path.join(bin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)], { reject: false })).exitCode !== 0) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`postgres on port ${port} did not come up`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    port, user: 'admin', passwordFile, dir, path: env.PATH,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const AS_POSTGRES = ['--reuid=postgres', '--regid=postgres', '--init-groups', '--'];

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([execa('id', ['-u', 'postgres']), execa('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
}
