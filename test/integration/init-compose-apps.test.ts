import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { parseSecretsFile } from '../../src/plan/secrets.js';
import { runCli, repoRoot } from '../support/cli.js';
import { removeByPrefix } from '../support/cluster.js';
import { mapImage, offlineImageFor, upOneNodeWithOfflinePostgres } from '../support/compose-cluster.js';
import { importNginxImage } from '../support/nginx-image.js';

/**
 * Two of issue 27's acceptance apps, in the shape of common public compose samples, from `depl init` to
 * answering through the edge on a one-node local cluster each (images made offline):
 * (2) an nginx proxy configured by a bound nginx.conf that calls `backend:8000`, a backend reading a file secret,
 *     PostgreSQL reading POSTGRES_PASSWORD_FILE from the same secret; two versions installed side by side each
 *     reach their own backend by its compose name;
 * (3) a stateful web app (an image with a named volume and a published port) with a database, whose data
 *     survives the next version's stop-first takeover.
 * The two apps run at the same time, each on its own cluster (CI's serial lane ran them one after the other:
 * 79 + 62 s); the cases of one app stay in order (`it.sequential`: its deploy needs its init).
 */

const edgeGet = async (edge: string, host: string, urlPath = '/') => {
  const answer = await execa('curl', ['-sS', '--max-time', '10', '-D', '-', '-H', `Host: ${host}`, `http://${edge}${urlPath}`], { reject: false });
  const [head = '', body = ''] = answer.stdout.split(/\r?\n\r?\n/, 2);
  const status = Number(/^HTTP\/\S+ (\d+)/.exec(head)?.[1] ?? 0);
  const version = /^x-depl-version: *(\S+)/im.exec(head)?.[1] ?? null;
  return { status, version, body };
};

async function fixtureApp(fixture: string, tag: string): Promise<{ dir: string; configFile: string; cli: (args: string[]) => ReturnType<typeof runCli> }> {
  const dir = path.join(await mkdtemp(path.join(os.tmpdir(), `depl-${tag}-`)), fixture);
  await cp(path.join(repoRoot, 'test', 'fixtures', fixture), dir, { recursive: true });
  const configFile = path.join(dir, 'depl.yaml');
  return { dir, configFile, cli: (args: string[]) => runCli([...args, '--config', configFile], { cwd: dir, timeoutMs: 600_000 }) };
}

describe.concurrent('compose app (2): an nginx proxy in front of a backend, deployed', () => {
  let app: Awaited<ReturnType<typeof fixtureApp>>;
  const prefix = `cp-${randomBytes(3).toString('hex')}`;
  const name = `cp${randomBytes(2).toString('hex')}`;
  const domain = `${name}.localhost`;
  const password = randomBytes(12).toString('hex');

  beforeAll(async () => {
    app = await fixtureApp('compose-proxy-app', 'proxy');
    await writeFile(path.join(app.dir, 'db-password.txt'), `${password}\n`);
    await writeFile(path.join(app.dir, 'release.txt'), 'one\n');
  });
  afterAll(async () => {
    await removeByPrefix(prefix);
    await rm(path.dirname(app.dir), { recursive: true, force: true });
  });

  it.sequential('init: the proxy is the http service with its nginx.conf as a file, the backend and PostgreSQL share the secret', async () => {
    const init = await app.cli(['init', '--app', name, '--domain', domain]);
    expect(init.exitCode, init.stderr).toBe(0);
    expect(init.stdout).toMatch(/proxy: runs as service proxy, reached through the edge/);
    expect(init.stdout).toMatch(/db: runs as under compose \(accessory db/);
    const config = parseConfig(await readFile(app.configFile, 'utf8'));
    expect(config.services.proxy).toMatchObject({ image: 'nginx:1.27', port: 80, http: true, files: { '/etc/nginx/nginx.conf': 'nginx.conf' } });
    expect(config.services.backend).toMatchObject({ http: false, secretPaths: { db_password: 'db-password' } });
    expect(await readFile(app.configFile, 'utf8')).not.toContain(password);
  });

  it.sequential('two versions side by side: each proxy reaches its own version\'s backend as backend:8000, and the live domain the live one\'s', async () => {
    await upOneNodeWithOfflinePostgres(app.configFile, prefix, app.cli);
    const node = `${prefix}-node-1`;
    const nginx = `depl-test/nginx-proxy:${randomBytes(3).toString('hex')}`;
    await importNginxImage(nginx);
    try {
      await mapImage(app.configFile, 'nginx:1.27', nginx, node);
    } finally {
      await execa('docker', ['image', 'rm', nginx], { reject: false });
    }

    const v1 = await app.cli(['buildinst', '--version', 'v1']);
    expect(v1.exitCode, v1.stderr.slice(-3000)).toBe(0);
    expect((await app.cli(['switch', 'v1'])).exitCode).toBe(0);
    await writeFile(path.join(app.dir, 'release.txt'), 'two\n');
    const v2 = await app.cli(['buildinst', '--version', 'v2']);
    expect(v2.exitCode, v2.stderr.slice(-3000)).toBe(0);

    const status = JSON.parse((await app.cli(['status', '--json'])).stdout) as { nodes: { address: string }[]; live: string };
    expect(status.live).toBe('v1');
    const edge = status.nodes[0]!.address;
    // every request through each version's proxy answers from that version's backend: never the other's
    for (const [host, release] of [[`v1.${domain}`, 'one'], [`v2.${domain}`, 'two'], [domain, 'one']] as const) {
      for (let i = 0; i < 8; i++) {
        const answer = await edgeGet(edge, host, `/check-${i}`);
        expect(answer.status, `${host}: ${answer.body}`).toBe(200);
        expect(JSON.parse(answer.body), host).toEqual({ release, db: true, password: true, path: `/check-${i}` });
      }
    }
    // the version networks: each version's services answer to their compose names on their own network only
    const networks = (await execa('docker', ['exec', node, 'docker', 'network', 'ls', '--format', '{{.Name}}', '--filter', `label=depl.app=${name}`])).stdout.split('\n').sort();
    expect(networks).toEqual([`${name}-net`, `${name}-v1-net`, `${name}-v2-net`]);

    // PostgreSQL took the secret the backend reads
    const db = (await execa('docker', ['exec', node, 'docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${name}-db`])).stdout.trim();
    const psql = (secret: string) => execa('docker', ['exec', node, 'docker', 'exec', '-e', `PGPASSWORD=${secret}`, db,
      'psql', '-h', '127.0.0.1', '-U', 'app', '-d', 'postgres', '-tAc', 'select 42'], { reject: false });
    const secret = parseSecretsFile(await readFile(path.join(app.dir, '.depl', 'secrets'), 'utf8')).find((e) => e.name === 'db_password')?.value;
    expect(secret).toBe(password);
    expect((await psql(password)).stdout.trim()).toBe('42');

    // with v3 in, prune --keep 1 takes v2 with its network; the live version's and the kept one's stay
    expect((await app.cli(['buildinst', '--version', 'v3'])).exitCode).toBe(0);
    const pruned = await app.cli(['prune', '--keep', '1']);
    expect(pruned.exitCode, pruned.stderr.slice(-2000)).toBe(0);
    const left = (await execa('docker', ['exec', node, 'docker', 'network', 'ls', '--format', '{{.Name}}', '--filter', `label=depl.app=${name}`])).stdout.split('\n').sort();
    expect(left).toEqual([`${name}-net`, `${name}-v1-net`, `${name}-v3-net`]);
    expect(JSON.parse((await edgeGet(edge, domain)).body)).toMatchObject({ release: 'one' });
  }, 1_200_000);
});

describe.concurrent('compose app (3): a stateful web app with a database, deployed', () => {
  let app: Awaited<ReturnType<typeof fixtureApp>>;
  const prefix = `cn-${randomBytes(3).toString('hex')}`;
  const name = `cn${randomBytes(2).toString('hex')}`;
  const domain = `${name}.localhost`;

  beforeAll(async () => {
    app = await fixtureApp('compose-stateful-app', 'stateful');
    await writeFile(path.join(app.dir, 'db-password.txt'), `${randomBytes(12).toString('hex')}\n`);
  });
  afterAll(async () => {
    await removeByPrefix(prefix);
    await rm(path.dirname(app.dir), { recursive: true, force: true });
  });

  it.sequential('init: the web app becomes a stateful service the edge routes, and the verdict says what its takeover means', async () => {
    const init = await app.cli(['init', '--app', name, '--domain', domain]);
    expect(init.exitCode, init.stderr).toBe(0);
    expect(init.stdout).toMatch(/notes: runs as service notes, reached through the edge at <version>\.<domain> and the live domain, one task with its volume notes-data pinned to the manager, kept across versions; a new version takes the volume over stop-first/);
    const config = parseConfig(await readFile(app.configFile, 'utf8'));
    expect(config.services.notes).toMatchObject({ image: 'notes-web:1.0', port: 3000, http: true, volume: 'notes-data:/data' });
    expect(config.accessories['notes-db']).toMatchObject({ volume: 'notes-pg:/var/lib/postgresql/data' });
  });

  it.sequential('its data survives the next version, which takes the volume over stop-first and goes live', async () => {
    await upOneNodeWithOfflinePostgres(app.configFile, prefix, app.cli);
    const node = `${prefix}-node-1`;
    await offlineImageFor(app.configFile, 'notes-web:1.0', path.join(repoRoot, 'test', 'fixtures', 'notes-web-image'), node);

    const v1 = await app.cli(['buildinst', '--version', 'v1']);
    expect(v1.exitCode, v1.stderr.slice(-3000)).toBe(0);
    expect((await app.cli(['switch', 'v1'])).exitCode).toBe(0);
    const status = JSON.parse((await app.cli(['status', '--json'])).stdout) as { nodes: { address: string }[] };
    const edge = status.nodes[0]!.address;
    const post = await execa('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Host: ${domain}`, '--data', 'kept across versions', `http://${edge}/notes`]);
    expect(post.stdout).toBe('201');
    expect(JSON.parse((await edgeGet(edge, `v1.${domain}`)).body)).toMatchObject({ db: true, notes: ['kept across versions'], starts: 1 });

    const plan = await app.cli(['buildinst', '--version', 'v2', '--dry-run']);
    expect(plan.exitCode, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(new RegExp(`stop ${name}-v1-notes \\(version v1\\): the volume is taken over stop-first`));
    expect(plan.stdout).toContain(`no zero downtime for a stateful service`);
    const v2 = await app.cli(['buildinst', '--version', 'v2']);
    expect(v2.exitCode, v2.stderr.slice(-3000)).toBe(0);

    const after = JSON.parse((await app.cli(['status', '--json'])).stdout) as { live: string };
    expect(after.live).toBe('v2');
    for (const host of [`v2.${domain}`, domain]) {
      const answer = await edgeGet(edge, host);
      expect(answer.status, `${host}: ${answer.body}`).toBe(200);
      expect(answer.version, host).toBe('v2');
      // the same volume: the note written through v1, and both versions' starts
      expect(JSON.parse(answer.body), host).toEqual({ db: true, notes: ['kept across versions'], starts: 2 });
    }
    // v1's service is kept at 0 tasks: one version holds the volume (app-scoped: <app>-notes-data)
    const replicas = (await execa('docker', ['exec', node, 'docker', 'service', 'ls', '--format', '{{.Name}} {{.Replicas}}', '--filter', `label=depl.volume=${name}-notes-data`])).stdout.split('\n').sort();
    expect(replicas).toEqual([`${name}-v1-notes 0/0`, `${name}-v2-notes 1/1`]);
    expect((await edgeGet(edge, `v1.${domain}`)).status).not.toBe(200);
  }, 1_200_000);
});
