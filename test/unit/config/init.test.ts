import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { UserError } from '../../../src/errors.js';
import { initConfig } from '../../../src/workflows/init.js';

const base = { app: 'shop', domain: 'shop.localhost', provider: 'local' as const, force: false };

async function folder(files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-init-'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return dir;
}

describe('depl init looks at its folder', () => {
  it('writes the example crawler in an empty folder, 0600', async () => {
    const dir = await folder();
    const result = await initConfig({ ...base, file: path.join(dir, 'depl.yaml') });
    expect(result.source).toBe('example crawler');
    expect(result.services).toEqual(['api', 'worker']);
    expect((await stat(result.file)).mode & 0o777).toBe(0o600);
  });

  it('translates compose.yaml before a Dockerfile, and lists what it did not translate', async () => {
    const dir = await folder({
      'Dockerfile': 'FROM scratch\n',
      'compose.yaml': 'services:\n  web: { build: ., ports: ["80:3000"], networks: [front] }\nnetworks: { front: {} }\n',
    });
    const result = await initConfig({ ...base, file: path.join(dir, 'depl.yaml') });
    expect(result.source).toBe('compose.yaml');
    expect(result.notTranslated).toEqual([
      'networks: depl makes one overlay network for the app',
      "services.web.networks: depl puts every service and accessory on the app's one overlay network",
    ]);
    const config = parseConfig(await readFile(result.file, 'utf8'));
    expect(config.services.web).toMatchObject({ port: 3000, http: true, build: { context: '.', dockerfile: 'Dockerfile' } });
  });

  it('makes one service from a lone Dockerfile: EXPOSE as the port without --port, or what was asked', async () => {
    const dir = await folder({ 'Dockerfile': 'FROM node:20\nEXPOSE 3000\n' });
    const quiet = await initConfig({ ...base, file: path.join(dir, 'depl.yaml') });
    expect(parseConfig(await readFile(quiet.file, 'utf8')).services.web).toMatchObject({ port: 3000, health: '/' });
    const asked: string[] = [];
    const answers = ['4000', '/ready'];
    const again = await initConfig({ ...base, force: true, file: path.join(dir, 'depl.yaml'), ask: async (q) => { asked.push(`${q.message} [${q.default}]`); return answers.shift()!; } });
    expect(asked).toEqual(['Port the service listens on [3000]', 'Health path (answers 200 when the service is ready) [/]']);
    expect(parseConfig(await readFile(again.file, 'utf8')).services.web).toMatchObject({ port: 4000, health: '/ready' });
  });

  it('never overwrites depl.yaml without --force, and refuses a bad --health or Compose file with exit 2, writing nothing', async () => {
    const dir = await folder({ 'depl.yaml': 'mine\n', 'Dockerfile': 'FROM x\n' });
    await expect(initConfig({ ...base, file: path.join(dir, 'depl.yaml') })).rejects.toThrow(/already exists/);
    expect(await readFile(path.join(dir, 'depl.yaml'), 'utf8')).toBe('mine\n');
    await expect(initConfig({ ...base, force: true, health: '//evil/ok', file: path.join(dir, 'depl.yaml') })).rejects.toBeInstanceOf(UserError);
    const bad = await folder({ 'docker-compose.yml': 'version: "3"\n' });
    await expect(initConfig({ ...base, file: path.join(bad, 'depl.yaml') })).rejects.toThrow(/has no "services:" mapping/);
    await expect(stat(path.join(bad, 'depl.yaml'))).rejects.toThrow();
  });
});

describe('the example crawler from any folder', () => {
  it('builds from depl\'s own checkout as ".", and from anywhere else by the package folder\'s absolute path', async () => {
    const { exampleContext } = await import('../../../src/plan/init-config.js');
    expect(exampleContext('/src/depl', '/src/depl', path.relative)).toBe('.');
    expect(exampleContext('/home/me/app', '/usr/lib/node_modules/depl', path.relative)).toBe('/usr/lib/node_modules/depl');
    const dir = await folder();
    const result = await initConfig({ ...base, file: path.join(dir, 'depl.yaml') });
    const api = parseConfig(await readFile(result.file, 'utf8')).services.api!;
    expect(path.isAbsolute(api.build!.context)).toBe(true);
    expect(await stat(path.join(api.build!.context, 'package.json'))).toBeTruthy();
    expect(await stat(api.build!.dockerfile)).toBeTruthy();
  });
});

describe('depl init from a compose file of a common shape', () => {
  const compose = `
name: Blog_Site
services:
  backend:
    build: { context: backend, target: runtime }
    ports: ["8000:8000"]
    secrets: [db-password]
    env_file: backend.env
  db:
    image: postgres:16
    environment: { POSTGRES_PASSWORD_FILE: /run/secrets/db-password }
    secrets: [db-password, api-key]
    volumes: [db-data:/var/lib/postgresql/data]
  proxy:
    image: nginx
    ports: ["80"]
    volumes: ["./nginx.conf:/etc/nginx/nginx.conf:ro", "/var/run/docker.sock:/var/run/docker.sock"]
    healthcheck: { test: ["CMD", "curl", "-f", "http://localhost/health"] }
secrets:
  db-password: { file: db/password.txt }
  api-key: { environment: BLOG_API_KEY }
volumes: { db-data: {} }
`;

  async function initBlog(extra: Partial<Parameters<typeof initConfig>[0]> = {}) {
    const dir = await folder({ 'compose.yaml': compose, 'backend.env': 'LOG_LEVEL=debug\n', 'nginx.conf': 'events {}\n' });
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(dir, 'db'));
    await writeFile(path.join(dir, 'db', 'password.txt'), 's3cret-from-file\n');
    const result = await initConfig({ provider: 'local', force: false, file: path.join(dir, 'depl.yaml'), env: { BLOG_API_KEY: 'key-from-env' }, ...extra });
    return { dir, result };
  }

  it('names the app after the compose name: (else the folder), and the domain after the app', async () => {
    const { result } = await initBlog();
    expect(result).toMatchObject({ app: 'blog-site', domain: 'blog-site.localhost' });
    const config = parseConfig(await readFile(result.file, 'utf8'));
    expect(config.app).toBe('blog-site');
    const asked: string[] = [];
    const { result: again } = await initBlog({ ask: async (q) => { asked.push(`${q.message} [${q.default}]`); return 'mine'; } });
    expect(asked).toEqual(['App name (prefixes every service; unique per cluster) [blog-site]']);
    expect(again.app).toBe('mine');
    const { result: given } = await initBlog({ app: 'given', domain: 'blog.example.org' });
    expect(given).toMatchObject({ app: 'given', domain: 'blog.example.org' });
    const dir = await folder({ 'compose.yaml': 'services:\n  web: { image: nginx }\n' });
    const named = await mkdtemp(path.join(dir, 'My_App-'));
    await writeFile(path.join(named, 'compose.yaml'), 'services:\n  web: { image: nginx }\n');
    expect((await initConfig({ provider: 'local', force: false, file: path.join(named, 'depl.yaml') })).app).toMatch(/^my-app-/);
  });

  it('imports the compose secrets\' values into .depl/secrets (0600) without showing them, mounted where compose mounted them', async () => {
    const { dir, result } = await initBlog();
    expect(result.importedSecrets).toEqual(['db_password', 'api_key']);
    expect(result.generatedSecrets).toEqual([]);
    const secretsFile = path.join(dir, '.depl', 'secrets');
    expect((await stat(secretsFile)).mode & 0o777).toBe(0o600);
    const secrets = await readFile(secretsFile, 'utf8');
    expect(secrets).toMatch(/^db_password=s3cret-from-file$/m);
    expect(secrets).toMatch(/^api_key=key-from-env$/m);
    const text = await readFile(result.file, 'utf8');
    expect(JSON.stringify(result) + text).not.toMatch(/s3cret-from-file|key-from-env/);
    const config = parseConfig(text);
    expect(config.accessories.db).toMatchObject({ secrets: ['db_password', 'api_key'], secretPaths: { db_password: 'db-password', api_key: 'api-key' } });
    expect(config.services.backend).toMatchObject({ build: { context: 'backend', target: 'runtime' }, env: { LOG_LEVEL: 'debug' }, secretPaths: { db_password: 'db-password' } });
    expect(config.services.proxy).toMatchObject({ files: { '/etc/nginx/nginx.conf': 'nginx.conf' }, health: '/health' });
  });

  it('keeps a secret value already in .depl/secrets, and generates one it cannot read, saying why', async () => {
    const { dir, result } = await initBlog({ env: {} });
    expect(result.importedSecrets).toEqual(['db_password']);
    expect(result.generatedSecrets).toEqual(['api_key']);
    expect(result.notTranslated).toContain('secrets.api-key.environment: BLOG_API_KEY is not set here; depl generated a value instead (set yours with depl secrets set api_key)');
    await writeFile(path.join(dir, 'db', 'password.txt'), 'changed\n');
    const again = await initConfig({ provider: 'local', force: true, file: path.join(dir, 'depl.yaml'), env: {} });
    expect(again.importedSecrets).toEqual([]);
    expect(await readFile(path.join(dir, '.depl', 'secrets'), 'utf8')).toMatch(/^db_password=s3cret-from-file$/m);
  });

  it('ends with a verdict per compose service', async () => {
    const { result } = await initBlog();
    expect(result.verdicts).toEqual([
      'backend: runs as service backend, reached through the edge at <version>.<domain> and the live domain, with differences: the edge\'s health gate is GET / answering 200 (compose had no HTTP healthcheck); set health: in depl.yaml if / does not answer 200',
      'db: runs as under compose (accessory db, one task pinned with its volume db-data, updated stop-first)',
      expect.stringMatching(/^proxy: runs as service proxy, reached through the edge .*, with differences: volumes: "\/var\/run\/docker.sock:\/var\/run\/docker.sock" is refused: .*Docker socket/),
    ]);
  });

  it('makes a stateful web app (gitea + postgres) a service the edge routes, with its volume, and says what its takeover means', async () => {
    const dir = await folder({
      'compose.yaml': [
        'services:',
        '  server:',
        '    image: gitea/gitea:1.22',
        '    environment: { GITEA__database__HOST: "db:5432" }',
        '    volumes: ["gitea:/data"]',
        '    ports: ["3000:3000", "222:22"]',
        '    depends_on: [db]',
        '  db:',
        '    image: postgres:16',
        '    volumes: ["pg:/var/lib/postgresql/data"]',
        '    ports: ["5432:5432"]',
        'volumes: { gitea: {}, pg: {} }',
        '',
      ].join('\n'),
    });
    const result = await initConfig({ ...base, file: path.join(dir, 'depl.yaml') });
    const config = parseConfig(await readFile(result.file, 'utf8'));
    expect(config.services.server).toMatchObject({ image: 'gitea/gitea:1.22', port: 3000, http: true, health: '/', volume: 'gitea:/data', replicas: 1 });
    expect(config.accessories.db).toMatchObject({ image: 'postgres:16', volume: 'pg:/var/lib/postgresql/data', port: 5432 });
    expect(result.verdicts[0]).toMatch(/^server: runs as service server, reached through the edge at <version>\.<domain> and the live domain, one task with its volume gitea pinned to the manager, kept across versions; a new version takes the volume over stop-first .* no zero downtime, and no two versions at once, with differences: .*ports: only one port per service is reached through the edge; kept 3000, not 22/);
    expect(result.verdicts[1]).toBe("db: runs as accessory db, one task pinned with its volume pg, updated stop-first, with differences: ports: not published: depl keeps postgres:16 an accessory (not an HTTP service), reached by its name on the app's network");
  });
});
