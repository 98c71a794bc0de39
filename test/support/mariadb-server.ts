import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import { createLogger } from '../../src/util/log.js';
import { freePort } from './redis.js';

/**
 * A real MariaDB server (Debian's mariadb-server-core and mariadb-client: the server program and the `mariadb` and
 * `mariadb-dump` clients, without the package's service that would start a server of its own) for one test file:
 * its own data folder, socket and free loopback port. Set up as the official image sets up its root: `root@'%'` with
 * a password, which is the admin login depl's branch jobs use. No container and no cluster: seconds to start.
 * Stopped by its pid.
 */
export interface TestMariadb {
  port: number;
  /** root's password file (what MYSQL_ROOT_PASSWORD_FILE points at in the accessory). */
  passwordFile: string;
  /** A folder for the test's own files, removed with the server. */
  dir: string;
  stop(): Promise<void>;
}

export const MARIADB_PACKAGES = ['mariadb-server-core', 'mariadb-client'];
const ROOT_PASSWORD = 'root-pw-for-tests';

export async function startMariadb(): Promise<TestMariadb> {
  await ensureDebianPackages(MARIADB_PACKAGES, createLogger());
  const dir = await mkdtemp(path.join(tmpdir(), 'depl-mariadb-'));
  const data = path.join(dir, 'data');
  const socket = path.join(dir, 'mariadb.sock');
  const passwordFile = path.join(dir, 'root-password');
  await writeFile(passwordFile, ROOT_PASSWORD);
  await execa('mariadb-install-db', ['--no-defaults', '--user=root', `--datadir=${data}`, '--auth-root-authentication-method=socket', '--skip-test-db'], { all: true });
  const port = await freePort();
  // skip-name-resolve: a login over TCP from 127.0.0.1 is `user@127.0.0.1`, never `localhost`, so it matches the
  // `'%'` accounts as a client on another container's address would
  const child: ChildProcess = spawn('mariadbd', [
    '--no-defaults', '--user=root', `--datadir=${data}`, `--socket=${socket}`, `--port=${port}`, '--bind-address=127.0.0.1',
    '--skip-name-resolve', '--innodb-flush-log-at-trx-commit=0', `--pid-file=${path.join(dir, 'mariadb.pid')}`,
  ], { stdio: 'ignore' });
  const asRootOverSocket = (sql: string) => execa('mariadb', ['--no-defaults', `--socket=${socket}`, '-u', 'root', '-e', sql], { reject: false, all: true });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = await asRootOverSocket('SELECT 1');
    if (ready.exitCode === 0) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`mariadbd on port ${port} did not come up: ${String(ready.all)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const made = await asRootOverSocket(`CREATE USER 'root'@'%' IDENTIFIED BY '${ROOT_PASSWORD}'; GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;`);
  if (made.exitCode !== 0) throw new Error(`could not make root@'%': ${String(made.all)}`);
  return {
    port, passwordFile, dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
