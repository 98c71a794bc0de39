import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../../src/config/load.js';
import { appFromCompose, dockerfileApp, renderImportedConfig } from '../../../src/plan/init-config.js';
import { planAccessory } from '../../../src/plan/services.js';
import { composeVerdicts } from '../../../src/plan/compose-verdict.js';
import { ComposeError, deplName, exposedPort, splitWords, translateCompose } from '../../../src/plan/compose-import.js';

const webWorkerRedisPostgres = parse(`
services:
  web:
    build: .
    command: gunicorn app:app --bind 0.0.0.0:8000
    ports: ["8080:8000"]
    environment:
      DATABASE_HOST: db
      SECRET_KEY: not-for-depl-yaml
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:8000/healthz"]
    deploy: { replicas: 2 }
    depends_on: [db, redis]
  worker:
    build: .
    command: ["celery", "-A", "app", "worker"]
  redis:
    image: redis:7
    volumes: ["redis-data:/data"]
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
  db:
    image: postgres:16
    environment:
      - POSTGRES_USER=app
      - POSTGRES_PASSWORD=hunter2hunter2
    volumes:
      - type: volume
        source: pg-data
        target: /var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U app"]
    expose: ["5432"]
volumes:
  redis-data: {}
  pg-data: {}
`);

describe('translateCompose', () => {
  const result = translateCompose(webWorkerRedisPostgres);

  it('makes the built service an http service with its container port, health path and replicas', () => {
    expect(result.services.web).toEqual({
      build: { context: '.', dockerfile: 'Dockerfile' },
      command: ['gunicorn', 'app:app', '--bind', '0.0.0.0:8000'],
      port: 8000,
      http: true,
      replicas: 2,
      health: '/healthz',
      env: { DATABASE_HOST: 'db', SECRET_KEY_FILE: '/run/secrets/secret_key' },
      secrets: ['secret_key'],
    });
  });

  it('runs a second service with the same build from the first one\'s image', () => {
    expect(result.services.worker).toEqual({ from: 'web', command: ['celery', '-A', 'app', 'worker'] });
  });

  it('makes image services with a named volume accessories pinned to the manager, health commands kept', () => {
    expect(result.accessories.redis).toEqual({ image: 'redis:7', node: 'manager', volume: 'redis-data:/data', health: { command: ['redis-cli', 'ping'] } });
    expect(result.accessories.db).toEqual({
      image: 'postgres:16',
      node: 'manager',
      volume: 'pg-data:/var/lib/postgresql/data',
      port: 5432,
      env: { POSTGRES_USER: 'app', POSTGRES_PASSWORD_FILE: '/run/secrets/postgres_password' },
      secrets: ['postgres_password'],
      health: { command: ['sh', '-c', 'pg_isready -U app'] },
    });
  });

  it('never copies a secret-looking value, and names where each secret came from', () => {
    expect(JSON.stringify({ ...result.services, ...result.accessories })).not.toContain('hunter2');
    expect(JSON.stringify(result)).not.toContain('not-for-depl-yaml');
    expect(result.secrets).toEqual([
      { name: 'secret_key', env: 'SECRET_KEY', service: 'web' },
      { name: 'postgres_password', env: 'POSTGRES_PASSWORD', service: 'db' },
    ]);
  });

  it('lists what it did not translate, with the reason', () => {
    expect(result.notTranslated).toEqual([expect.stringMatching(/^services\.web\.depends_on: swarm starts services together/)]);
  });

  it('lists bind mounts, extra ports, udp, entrypoint, env from the host and top-level secrets', () => {
    const r = translateCompose(parse(`
services:
  Api_Server:
    image: example/api:1
    entrypoint: /start.sh
    ports: ["80:8080", "9090", "53:53/udp"]
    volumes: ["./src:/app"]
    environment: [HOME_DIR]
secrets:
  db_pass: { file: ./db_pass.txt }
`));
    expect(r.services['api-server']).toEqual({ image: 'example/api:1', aliases: ['Api_Server'], entrypoint: ['/start.sh'], port: 8080, http: true, health: '/' });
    expect(r.secretImports).toEqual([{ name: 'db_pass', composeName: 'db_pass', from: { file: './db_pass.txt' } }]);
    expect(r.notTranslated).toEqual([
      'services.Api_Server.environment.HOME_DIR: takes its value from the environment of the machine running compose; set it in depl.yaml',
      'services.Api_Server.ports: "53:53/udp" is not a single TCP port',
      'services.Api_Server.ports: only one port per service is reached through the edge; kept 8080, not 9090',
      'services.Api_Server.volumes: "./src:/app" is a writable bind: its writes would stay on one node, which the others do not share; use a named volume, or add :ro to mount the project\'s files read-only',
    ]);
  });

  it('keeps build args and a dockerfile relative to the context, as depl resolves it from depl.yaml\'s folder', () => {
    const r = translateCompose({ services: { web: { build: { context: 'web', dockerfile: 'deploy/Dockerfile', args: ['NODE_ENV=production'] }, ports: [{ target: 3000, published: 80 }] } } });
    expect(r.services.web).toEqual({ build: { context: 'web', dockerfile: 'web/deploy/Dockerfile', args: { NODE_ENV: 'production' } }, port: 3000, http: true, health: '/' });
  });

  it('makes an image or a build with a named volume and a published web port a stateful service; a database publishing its port stays an accessory', () => {
    const imported = translateCompose({
      services: {
        cloud: { image: 'nextcloud:29', ports: ['8080:80'], volumes: ['nextcloud:/var/www/html', 'apps:/var/www/html/custom_apps'], deploy: { replicas: 2 } },
        wiki: { build: '.', ports: ['3000'], volumes: ['wiki-data:/data'] },
        cache: { image: 'redis:7', ports: ['6379:6379'], volumes: ['r:/data'] },
        db: { image: 'docker.io/library/mariadb:11', ports: ['3307:3306'], volumes: ['m:/var/lib/mysql'] },
      },
    });
    expect(imported.services.cloud).toEqual({ image: 'nextcloud:29', port: 80, http: true, health: '/', volume: 'nextcloud:/var/www/html', replicas: 1 });
    expect(imported.services.wiki).toMatchObject({ build: { context: '.' }, port: 3000, http: true, volume: 'wiki-data:/data' });
    expect(Object.keys(imported.accessories)).toEqual(['cache', 'db']);
    expect(imported.notTranslated).toEqual(expect.arrayContaining([
      'services.cloud.volumes: "apps:/var/www/html/custom_apps": a stateful service keeps one named volume',
      'services.cloud.deploy.replicas: a service with a volume runs one task, pinned with its volume (its data files cannot be shared)',
      "services.db.ports: not published: depl keeps docker.io/library/mariadb:11 an accessory (not an HTTP service), reached by its name on the app's network",
    ]));
    // gitea + postgres was refused as having nothing to deploy; it is an app now
    expect(() => translateCompose({ services: { gitea: { image: 'gitea/gitea', ports: ['3000:3000'], volumes: ['g:/data'] }, db: { image: 'postgres', volumes: ['d:/x'] } } })).not.toThrow();
  });

  it('refuses a file without services, or with only accessories', () => {
    expect(() => translateCompose({ version: '3' })).toThrow(ComposeError);
    expect(() => translateCompose({ services: { db: { image: 'postgres', volumes: ['d:/var/lib/postgresql/data'] } } })).toThrow(/no service depl can deploy/);
  });
});

describe('helpers', () => {
  it('splits a command string as a shell would, without expanding', () => {
    expect(splitWords(`sh -c 'echo "$HOME" done' --flag="a b" x\\ y`)).toEqual(['sh', '-c', 'echo "$HOME" done', '--flag=a b', 'x y']);
    expect(splitWords('bad "quote')).toBeNull();
  });

  it('keeps a compose name that is not a depl name as an alias, so code that calls my_api:8000 or My_DB still resolves', () => {
    const imported = translateCompose({
      services: {
        my_api: { build: '.', ports: ['8000'] },
        My_DB: { image: 'postgres:16', volumes: ['pg:/var/lib/postgresql/data'] },
        web: { image: 'nginx:1.27', ports: ['80'] },
      },
    });
    expect(imported.services['my-api']).toMatchObject({ aliases: ['my_api'], port: 8000 });
    expect(imported.accessories['my-db']).toMatchObject({ aliases: ['My_DB'] });
    expect(imported.services.web?.aliases).toBeUndefined();
    expect(composeVerdicts(['my_api'], imported, [])).toEqual([expect.stringMatching(/named my-api .*reach it as my-api and, as under compose, as my_api/)]);
  });

  it('makes compose names depl names, or refuses them', () => {
    expect(deplName('my_web')).toBe('my-web');
    expect(deplName('a-service-name-that-is-much-too-long')).toBeNull();
  });

  it('finds the first EXPOSEd port of a Dockerfile', () => {
    expect(exposedPort('FROM node\nexpose 3000/tcp 4000\n')).toBe(3000);
    expect(exposedPort('FROM node\n')).toBeUndefined();
  });
});

describe('the depl.yaml written from a Compose file', () => {
  const template = readFileSync(new URL('../../../templates/depl.example.yaml', import.meta.url), 'utf8');
  const choices = { app: 'shop', domain: 'shop.example.org', provider: 'local' as const };
  const text = renderImportedConfig(template, choices, appFromCompose(translateCompose(webWorkerRedisPostgres)), 'compose.yaml');
  const config = parseConfig(text);

  it('validates as depl.yaml, with the compose services, accessories and declared secrets', () => {
    expect(config.app).toBe('shop');
    expect(Object.keys(config.services)).toEqual(['web', 'worker']);
    expect(config.services.worker?.from).toBe('web');
    expect(config.accessories.db?.health?.command).toEqual(['sh', '-c', 'pg_isready -U app']);
    expect(config.secrets).toEqual(['secret_key', 'postgres_password']);
    expect(config.accessories.db?.secrets).toEqual(['postgres_password']);
  });

  it('stays commented: the template head, and what was not translated, with no secret value', () => {
    expect(text).toMatch(/^# depl\.yaml: everything depl needs/);
    expect(text).toContain('# The services of one version, from compose.yaml.');
    expect(text).toContain('#   - services.web.depends_on: swarm starts services together');
    expect(text).toContain('#   - services.db.environment.POSTGRES_PASSWORD: became secret "postgres_password"');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('change-me');
  });

  it('makes one http service from a lone Dockerfile', () => {
    const one = parseConfig(renderImportedConfig(template, choices, dockerfileApp({ dockerfile: 'Dockerfile', port: 3000, health: '/up' }), 'Dockerfile'));
    expect(one.services).toEqual({ web: expect.objectContaining({ build: { context: '.', dockerfile: 'Dockerfile', args: {} }, port: 3000, http: true, health: '/up', replicas: 2 }) });
    expect(one.accessories).toEqual({});
  });
});

describe('an accessory from a Compose file', () => {
  it('runs with its environment and health command as a swarm health check', () => {
    const config = parseConfig(renderImportedConfig(readFileSync(new URL('../../../templates/depl.example.yaml', import.meta.url), 'utf8'),
      { app: 'shop', domain: 'shop.localhost', provider: 'local' }, appFromCompose(translateCompose(webWorkerRedisPostgres)), 'compose.yaml'));
    const spec = planAccessory('shop', 'db', config.accessories.db!, 'postgres:16', 'shop-net', { postgres_password: { id: 's1', name: 'shop-postgres_password-1' } });
    expect(spec.TaskTemplate.ContainerSpec.Env).toEqual(['POSTGRES_USER=app', 'POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password']);
    expect(spec.TaskTemplate.ContainerSpec.HealthCheck).toEqual({ Test: ['CMD', 'sh', '-c', 'pg_isready -U app'], Interval: 5e9, Timeout: 5e9, Retries: 5, StartPeriod: 60e9 });
    expect(spec.TaskTemplate.ContainerSpec.Mounts?.[0]).toMatchObject({ Source: 'shop-pg-data', Target: '/var/lib/postgresql/data' });
  });
});
