import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { runCli, repoRoot } from '../support/cli.js';
import { removeByPrefix } from '../support/cluster.js';
import { upOneNodeWithOfflinePostgres } from '../support/compose-cluster.js';

/**
 * A compose app of a common public shape, deployed offline: a backend built from a multi-stage Dockerfile with
 * `target:`, PostgreSQL reading POSTGRES_PASSWORD_FILE from the same file secret the backend reads at
 * /run/secrets/db-password, Redis, a read-only bind of a project file, and a compose `name:` that is not the
 * folder's. depl init names the app after `name:`, imports the secret's value without showing it, and the app
 * answers through the edge at its version host and the live domain.
 */
describe('depl init from a compose file with secrets, a bound file and a build target, deployed', () => {
  let dir: string;
  let prefix: string;
  let configFile: string;
  const app = `cs${randomBytes(2).toString('hex')}`;
  const domain = `${app}.localhost`;
  const password = randomBytes(12).toString('hex');
  const cli = (args: string[], timeoutMs = 600_000) => runCli([...args, '--config', configFile], { cwd: dir, timeoutMs });

  beforeAll(async () => {
    const parent = await mkdtemp(path.join(os.tmpdir(), 'depl-compose-secrets-'));
    dir = path.join(parent, 'not-the-app-name');
    await mkdir(dir);
    await cp(path.join(repoRoot, 'test', 'fixtures', 'compose-secrets-app'), dir, { recursive: true });
    const compose = path.join(dir, 'compose.yaml');
    await writeFile(compose, (await readFile(compose, 'utf8')).replace('__NAME__', app.toUpperCase()));
    await writeFile(path.join(dir, 'db-password.txt'), `${password}\n`);
    prefix = `cs-${randomBytes(3).toString('hex')}`;
    configFile = path.join(dir, 'depl.yaml');
  });

  afterAll(async () => {
    await removeByPrefix(prefix);
    await rm(path.dirname(dir), { recursive: true, force: true });
  });

  it('names the app after the compose name:, imports the secret unseen, and gives a verdict per service', async () => {
    const init = await cli(['init']);
    expect(init.exitCode, init.stderr).toBe(0);
    expect(init.stdout).toContain(`for app ${app} at ${domain}`);
    expect(init.stdout).toContain('Imported the compose values of db_password');
    expect(init.stdout).toMatch(/db: runs as under compose \(accessory db, one task pinned with its volume pg-data/);
    expect(init.stdout).toMatch(/web: runs as service web, reached through the edge/);
    expect(init.stdout + await readFile(configFile, 'utf8')).not.toContain(password);
    const config = parseConfig(await readFile(configFile, 'utf8'));
    expect(config.app).toBe(app);
    expect(config.services.web).toMatchObject({ build: { target: 'runtime' }, user: '1000', secretPaths: { db_password: 'db-password' }, files: { '/etc/app/greeting.txt': 'greeting.txt' } });
    expect(config.accessories.db).toMatchObject({ secrets: ['db_password'], secretPaths: { db_password: 'db-password' } });
  });

  it('deploys: the backend answers through the edge at its version host and the live domain, and PostgreSQL took the secret', async () => {
    await upOneNodeWithOfflinePostgres(configFile, prefix, cli);
    const install = await cli(['buildinst', '--version', 'v1']);
    expect(install.exitCode, install.stderr.slice(-3000)).toBe(0);
    const switched = await cli(['switch', 'v1']);
    expect(switched.exitCode, switched.stderr.slice(-2000)).toBe(0);

    const status = JSON.parse((await cli(['status', '--json'])).stdout) as { nodes: { address: string }[] };
    const edge = status.nodes[0]!.address;
    for (const host of [`v1.${domain}`, domain]) {
      const health = await execa('curl', ['-sS', '--max-time', '10', '-H', `Host: ${host}`, `http://${edge}/healthz`], { reject: false });
      expect(JSON.parse(health.stdout), host).toEqual({ db: true, redis: true, password: true, greeting: 'hello from the project\n', uid: 1000, cwd: '/app' });
    }

    const node = `${prefix}-node-1`;
    const db = (await execa('docker', ['exec', node, 'docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${app}-db`])).stdout.trim();
    expect(db).not.toBe('');
    const psql = (secret: string) => execa('docker', ['exec', node, 'docker', 'exec', '-e', `PGPASSWORD=${secret}`, db,
      'psql', '-h', '127.0.0.1', '-U', 'app', '-d', 'postgres', '-tAc', 'select 42'], { reject: false });
    expect((await psql(password)).stdout.trim()).toBe('42');
    expect((await psql('not-the-password')).exitCode).not.toBe(0);
  });
});
