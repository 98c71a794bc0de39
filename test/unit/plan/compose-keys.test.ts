import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../../src/config/load.js';
import { CONFIG_KEYS, SECRET_KEYS, SERVICE_KEY_REASONS, TRANSLATED_SERVICE_KEYS, VOLUME_KEYS } from '../../../src/plan/compose-keys.js';
import { appNameFrom, composeDuration, envFilePaths, parseEnvFile, translateCompose } from '../../../src/plan/compose-import.js';
import { appFromCompose, renderImportedConfig } from '../../../src/plan/init-config.js';
import { planAccessory, planVersionServices } from '../../../src/plan/services.js';

/** The keys of a service in the Compose Specification (compose-spec/compose-spec, 05-services.md). */
const SPEC_SERVICE_KEYS = [
  'annotations', 'attach', 'build', 'blkio_config', 'cpu_count', 'cpu_percent', 'cpu_shares', 'cpu_period', 'cpu_quota',
  'cpu_rt_runtime', 'cpu_rt_period', 'cpus', 'cpuset', 'cap_add', 'cap_drop', 'cgroup', 'cgroup_parent', 'command',
  'configs', 'container_name', 'credential_spec', 'depends_on', 'deploy', 'develop', 'device_cgroup_rules', 'devices',
  'dns', 'dns_opt', 'dns_search', 'domainname', 'driver_opts', 'entrypoint', 'env_file', 'environment', 'expose',
  'extends', 'external_links', 'extra_hosts', 'gpus', 'group_add', 'healthcheck', 'hostname', 'image', 'init', 'ipc',
  'isolation', 'labels', 'label_file', 'links', 'logging', 'mac_address', 'mem_limit', 'mem_reservation',
  'mem_swappiness', 'memswap_limit', 'models', 'network_mode', 'networks', 'oom_kill_disable', 'oom_score_adj', 'pid',
  'pids_limit', 'platform', 'ports', 'post_start', 'pre_stop', 'privileged', 'profiles', 'provider', 'pull_policy',
  'read_only', 'restart', 'runtime', 'scale', 'secrets', 'security_opt', 'shm_size', 'stdin_open', 'stop_grace_period',
  'stop_signal', 'storage_opt', 'sysctls', 'tmpfs', 'tty', 'ulimits', 'use_api_socket', 'user', 'userns_mode', 'uts',
  'volumes', 'volumes_from', 'working_dir',
];

const template = readFileSync(new URL('../../../templates/depl.example.yaml', import.meta.url), 'utf8');
const asConfig = (doc: unknown) => parseConfig(renderImportedConfig(template, { app: 'shop', domain: 'shop.localhost', provider: 'local' }, appFromCompose(translateCompose(doc)), 'compose.yaml'));

describe('every key of the Compose Specification\'s services section', () => {
  it('is translated, or has its own reason for not being translated', () => {
    for (const key of SPEC_SERVICE_KEYS) {
      const translated = (TRANSLATED_SERVICE_KEYS as readonly string[]).includes(key);
      expect(translated || SERVICE_KEY_REASONS[key] !== undefined, key).toBe(true);
      expect(translated && SERVICE_KEY_REASONS[key] !== undefined, `${key} is both translated and refused`).toBe(false);
    }
  });

  it('lists each untranslated key with its reason when a service uses it', () => {
    for (const [key, reason] of Object.entries(SERVICE_KEY_REASONS)) {
      const r = translateCompose({ services: { web: { image: 'nginx', [key]: 'x' } } });
      expect(r.notTranslated, key).toContain(`services.web.${key}: ${reason}`);
    }
    const unknown = translateCompose({ services: { web: { image: 'nginx', frobnicate: 1 } } });
    expect(unknown.notTranslated).toEqual(['services.web.frobnicate: is not a key of the Compose Specification depl knows']);
  });

  it('translates user, working_dir, entrypoint, command, stop signal and grace period, replicas and resources into the swarm spec', () => {
    const config = asConfig(parse(`
services:
  web:
    build: { context: ., target: runtime, args: { A: "1" }, dockerfile: docker/Dockerfile }
    user: "1000:1000"
    working_dir: /srv
    entrypoint: ["tini", "--"]
    command: node server.js
    stop_signal: INT
    stop_grace_period: 1m30s
    ports: ["3000"]
    deploy:
      replicas: 3
      resources:
        limits: { cpus: "0.5", memory: 512M }
        reservations: { memory: 128m }
`));
    const web = config.services.web!;
    expect(web).toMatchObject({
      build: { context: '.', dockerfile: 'docker/Dockerfile', args: { A: '1' }, target: 'runtime' },
      user: '1000:1000', workdir: '/srv', entrypoint: ['tini', '--'], command: ['node', 'server.js'],
      stopSignal: 'SIGINT', stopGracePeriod: '90s', replicas: 3, port: 3000, http: true, health: '/',
      resources: { limits: { cpus: 0.5, memory: '512m' }, reservations: { memory: '128m' } },
    });
    const [spec] = planVersionServices({ config, version: 'v1', images: { web: 'shop/web:v1' }, network: 'net', configRef: { id: 'c', name: 'c' }, nodes: 3 });
    const container = spec!.TaskTemplate.ContainerSpec;
    expect(container).toMatchObject({ Command: ['tini', '--'], Args: ['node', 'server.js'], User: '1000:1000', Dir: '/srv', StopSignal: 'SIGINT', StopGracePeriod: 90e9 });
    expect(spec!.TaskTemplate.Resources).toEqual({ Limits: { NanoCPUs: 5e8, MemoryBytes: 512 * 1024 ** 2 }, Reservations: { MemoryBytes: 128 * 1024 ** 2 } });
    expect(spec!.Mode.Replicated.Replicas).toBe(3);
  });

  it('takes the service-level shorthands: scale, cpus, mem_limit, mem_reservation', () => {
    const r = translateCompose({ services: { web: { image: 'nginx', scale: 2, cpus: 1.5, mem_limit: '1gb', mem_reservation: '256m' } } });
    expect(r.services.web).toMatchObject({ replicas: 2, resources: { limits: { cpus: 1.5, memory: '1g' }, reservations: { memory: '256m' } } });
    expect(r.notTranslated).toEqual([]);
  });

  it('lists the deploy keys swarm could take but depl decides itself, each with its reason', () => {
    const r = translateCompose({ services: { web: { image: 'nginx', deploy: { mode: 'global', placement: {}, update_config: {}, resources: { limits: { pids: 10 } } } } } });
    expect(r.notTranslated).toEqual([
      'services.web.deploy.resources.limits.pids: swarm limits and reserves cpus and memory only',
      'services.web.deploy.mode: depl runs replicated services (global is not offered)',
      "services.web.deploy.placement: depl places versioned services anywhere and pins accessories and stateful services to their volume's node",
      'services.web.deploy.update_config: depl installs each version as new services and switches the edge; accessories update stop-first',
    ]);
  });

  it('keeps a healthcheck with its timing: an HTTP one as the edge\'s gate, any other as the container\'s check', () => {
    const r = translateCompose(parse(`
services:
  api:
    image: example/api
    ports: ["8080"]
    healthcheck: { test: ["CMD", "wget", "-qO-", "http://localhost:8080/ready"], interval: 10s }
  worker:
    image: example/worker
    healthcheck: { test: "test -f /tmp/alive", interval: 1m, timeout: 3s, retries: 2, start_period: 20s, start_interval: 1s }
  db:
    image: postgres
    volumes: [pg:/var/lib/postgresql/data]
    healthcheck: { test: ["CMD-SHELL", "pg_isready"], interval: 2s, retries: 20 }
`));
    expect(r.services.api).toMatchObject({ health: '/ready' });
    expect(r.services.api!.healthcheck).toBeUndefined();
    expect(r.services.worker!.healthcheck).toEqual({ command: ['sh', '-c', 'test -f /tmp/alive'], interval: '1m', timeout: '3s', retries: 2, startPeriod: '20s' });
    expect(r.accessories.db!.health).toEqual({ command: ['sh', '-c', 'pg_isready'], interval: '2s', retries: 20 });
    expect(r.notTranslated).toEqual(['services.worker.healthcheck.start_interval: swarm services check at one interval']);
    const config = asConfig(parse(`
services:
  worker: { image: w, healthcheck: { test: "true", interval: 1m, timeout: 3s, retries: 2, start_period: 20s } }
  db: { image: postgres, volumes: ["pg:/d"], healthcheck: { test: ["CMD", "pg_isready"], timeout: 2s } }
`));
    const [worker] = planVersionServices({ config, version: 'v1', images: { worker: 'w' }, network: 'net', configRef: { id: 'c', name: 'c' }, nodes: 1 });
    expect(worker!.TaskTemplate.ContainerSpec.HealthCheck).toEqual({ Test: ['CMD', 'sh', '-c', 'true'], Interval: 60e9, Timeout: 3e9, Retries: 2, StartPeriod: 20e9 });
    expect(planAccessory('shop', 'db', config.accessories.db!, 'postgres', 'net').TaskTemplate.ContainerSpec.HealthCheck)
      .toEqual({ Test: ['CMD', 'pg_isready'], Interval: 5e9, Timeout: 2e9, Retries: 5, StartPeriod: 60e9 });
  });

  it('reads env_file texts depl init read, later files and environment: winning; a secret-looking key becomes a secret', () => {
    const doc = { services: { web: { image: 'x', env_file: ['common.env', { path: 'local.env', required: false }, 'missing.env'], environment: { MODE: 'prod' } } } };
    expect(envFilePaths(doc)).toEqual(['common.env', 'local.env', 'missing.env']);
    const r = translateCompose(doc, { envFiles: { 'common.env': 'MODE=dev\nLEVEL=info # comment\nexport API_TOKEN="abc"\n', 'local.env': "LEVEL='debug'\n" } });
    expect(r.services.web!.env).toEqual({ MODE: 'prod', LEVEL: 'debug', API_TOKEN_FILE: '/run/secrets/api_token' });
    expect(r.services.web!.secrets).toEqual(['api_token']);
    expect(r.notTranslated).toEqual(['services.web.env_file: "missing.env" could not be read; its variables are not in depl.yaml']);
    expect(JSON.stringify(r)).not.toContain('abc');
    expect(parseEnvFile('A=1\n#B=2\n C = "x y" \n')).toEqual({ A: '1', C: 'x y' });
  });

  it('makes depends_on between accessories their start order, and notes it elsewhere', () => {
    const r = translateCompose(parse(`
services:
  web: { build: ., depends_on: { db: { condition: service_healthy } } }
  cache: { image: redis, volumes: ["c:/data"], depends_on: [db] }
  db: { image: postgres, volumes: ["d:/var/lib/postgresql/data"] }
`));
    expect(r.accessories.cache!.dependsOn).toEqual(['db']);
    expect(r.notTranslated).toEqual([expect.stringMatching(/^services\.web\.depends_on: swarm starts services together/)]);
  });

  it('converts compose durations', () => {
    expect([composeDuration('1m30s'), composeDuration('10s'), composeDuration('500ms'), composeDuration('1h'), composeDuration('2.5s'), composeDuration('soon')])
      .toEqual(['90s', '10s', '500ms', '60m', '2500ms', null]);
  });
});

describe('the app\'s name', () => {
  it('comes from the compose file\'s name:, else the folder, made a valid app name', () => {
    expect(appNameFrom('My_Shop', 'ignored')).toBe('my-shop');
    expect(appNameFrom(undefined, 'Gitea-Postgres.Sample')).toBe('gitea-postgres-sampl');
    expect(appNameFrom('___', 'web_app')).toBe('web-app');
    expect(appNameFrom(undefined, '---')).toBeNull();
    expect(translateCompose({ name: 'blog', services: { web: { image: 'x' } } }).name).toBe('blog');
  });
});

describe('compose secrets', () => {
  const r = translateCompose(parse(`
services:
  backend:
    build: backend
    secrets: [db-password]
  db:
    image: postgres
    volumes: [db-data:/var/lib/postgresql/data]
    environment: { POSTGRES_PASSWORD_FILE: /run/secrets/db-password }
    secrets:
      - source: db-password
      - source: api-key
        target: /etc/app/key
        mode: 0400
      - undeclared
secrets:
  db-password: { file: db/password.txt }
  api-key: { environment: API_KEY }
  shared: { external: true }
`));

  it('are declared under their depl names, with where each value is imported from', () => {
    expect(r.secretImports).toEqual([
      { name: 'db_password', composeName: 'db-password', from: { file: 'db/password.txt' } },
      { name: 'api_key', composeName: 'api-key', from: { env: 'API_KEY' } },
    ]);
    expect(r.declaredSecrets).toEqual(['shared']);
  });

  it('are mounted where compose mounted them, in the services that list them', () => {
    expect(r.services.backend).toMatchObject({ secrets: ['db_password'], secretPaths: { db_password: 'db-password' } });
    expect(r.accessories.db).toMatchObject({ secrets: ['db_password', 'api_key'], secretPaths: { db_password: 'db-password', api_key: '/etc/app/key' } });
    expect(r.notTranslated).toEqual([
      "secrets.shared.external: an external secret exists only where compose ran; depl declares it and generates a value (set yours with depl secrets set NAME)",
      "services.db.secrets.api-key.mode: depl mounts secrets owned by root, mode 0444 (readable by the image's user)",
      'services.db.secrets: "undeclared" is not a secret under the top-level secrets: (or could not be translated)',
    ]);
    const config = parseConfig(renderImportedConfig(template, { app: 'shop', domain: 'shop.localhost', provider: 'local' }, appFromCompose(r), 'compose.yaml'));
    expect(config.secrets).toEqual(['db_password', 'api_key', 'shared']);
    const spec = planAccessory('shop', 'db', config.accessories.db!, 'postgres', 'net', { db_password: { id: 's1', name: 'shop-db_password-1' }, api_key: { id: 's2', name: 'shop-api_key-1' } });
    expect(spec.TaskTemplate.ContainerSpec.Secrets?.map((s) => s.File.Name)).toEqual(['db-password', '/etc/app/key']);
  });

  it('know every key of the specification\'s secrets section', () => {
    expect(Object.keys(SECRET_KEYS).sort()).toEqual(['driver', 'driver_opts', 'environment', 'external', 'file', 'labels', 'name', 'template_driver']);
  });
});

describe('compose configs and binds', () => {
  const r = translateCompose(parse(`
services:
  proxy:
    image: nginx
    ports: ["80"]
    configs: [site, { source: extra, target: /etc/extra.conf }, missing]
    volumes:
      - ./nginx.conf:/etc/nginx/nginx.conf:ro
      - type: bind
        source: ./prometheus
        target: /etc/prometheus
        read_only: true
      - /var/run/docker.sock:/var/run/docker.sock
      - /etc:/host-etc:ro
      - ../outside:/x:ro
      - ./data:/data
configs:
  site: { file: ./site.conf }
  extra: { file: conf/extra.conf }
  inline: { content: "x" }
`));

  it('mount the project\'s files read-only where compose mounted them', () => {
    expect(r.services.proxy!.files).toEqual({
      '/site': 'site.conf',
      '/etc/extra.conf': 'conf/extra.conf',
      '/etc/nginx/nginx.conf': 'nginx.conf',
      '/etc/prometheus': 'prometheus',
    });
  });

  it('refuse host paths and paths outside the project with the reason, and writable binds', () => {
    const lines = r.notTranslated.join('\n');
    expect(lines).toContain('configs.inline.content: inline content');
    expect(lines).toContain('services.proxy.configs: "missing" is not a config with a file: in the project');
    expect(lines).toMatch(/"\/var\/run\/docker.sock:\/var\/run\/docker.sock" is refused: .*Docker socket/);
    expect(lines).toMatch(/"\/etc:\/host-etc:ro" is refused: "\/etc" is a path on this machine, outside the project/);
    expect(lines).toMatch(/"\.\.\/outside:\/x:ro" is refused: .*climbs out of the project folder/);
    expect(lines).toMatch(/"\.\/data:\/data" is a writable bind/);
  });

  it('validate as depl.yaml files: and become swarm config mounts', () => {
    const config = asConfig({ services: { proxy: { image: 'nginx', volumes: ['./nginx.conf:/etc/nginx/nginx.conf:ro'] } } });
    expect(config.services.proxy!.files).toEqual({ '/etc/nginx/nginx.conf': 'nginx.conf' });
    const [spec] = planVersionServices({
      config, version: 'v1', images: { proxy: 'nginx' }, network: 'net', configRef: { id: 'c', name: 'shop-config-1' }, nodes: 1,
      files: [{ owner: 'proxy', target: '/etc/nginx/nginx.conf', id: 'f1', name: 'shop-file-abc' }, { owner: 'other', target: '/x', id: 'f2', name: 'shop-file-def' }],
    });
    expect(spec!.TaskTemplate.ContainerSpec.Configs?.map((c) => [c.File.Name, c.ConfigName])).toEqual([['/run/depl/config.json', 'shop-config-1'], ['/etc/nginx/nginx.conf', 'shop-file-abc']]);
  });

  it('know every key of the specification\'s configs and volumes sections', () => {
    expect(Object.keys(CONFIG_KEYS).sort()).toEqual(['content', 'environment', 'external', 'file', 'labels', 'name', 'template_driver']);
    expect(Object.keys(VOLUME_KEYS).sort()).toEqual(['driver', 'driver_opts', 'external', 'labels', 'name']);
    const v = translateCompose({ services: { web: { image: 'x' } }, volumes: { data: { driver: 'nfs', external: true } } });
    expect(v.notTranslated).toEqual([
      "volumes.data.driver: depl uses the local driver on the accessory's node",
      'volumes.data.external: depl creates the volume on the node its accessory is pinned to; an existing one of that name there is used',
    ]);
  });
});

describe('build', () => {
  it('keeps target, args and dockerfile; refuses a context outside the project or remote, with the reason', () => {
    const r = translateCompose({ services: {
      web: { build: { context: './app', target: 'prod', dockerfile: 'Dockerfile.prod' } },
      up: { build: '../elsewhere' },
      git: { build: 'https://github.com/example/app.git' },
    } });
    expect(r.services.web!.build).toEqual({ context: 'app', dockerfile: 'app/Dockerfile.prod', target: 'prod' });
    expect(Object.keys(r.services)).toEqual(['web']);
    expect(r.notTranslated).toEqual([
      'services.up.build.context: "../elsewhere" climbs out of the project folder; only files inside it are carried to the cluster. The service is not deployed',
      'services.git.build.context: "https://github.com/example/app.git" is a remote context; depl builds from folders in the project (clone it into the project first). The service is not deployed',
    ]);
  });
});
