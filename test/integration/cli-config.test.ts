import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

describe('depl CLI: help, init and config errors, run as a user would', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints help for every command in the contract, and exits 0', async () => {
    const top = await runCli(['--help'], { cwd: dir });
    expect(top.exitCode).toBe(0);
    for (const command of ['init', 'node-up', 'node-down', 'status', 'buildinst', 'versions', 'switch', 'rollback', 'canary', 'stats', 'prune', 'lock', 'crawl']) {
      expect(top.stdout).toContain(command);
      const sub = await runCli([command, '--help'], { cwd: dir });
      expect(sub.exitCode, `${command} --help`).toBe(0);
      expect(sub.stdout).toMatch(new RegExp(`Usage: depl ${command}`));
    }
  });

  it('exits 2 on an unknown command or option', async () => {
    expect((await runCli(['deploy-everything'], { cwd: dir })).exitCode).toBe(2);
    expect((await runCli(['status', '--colour'], { cwd: dir })).exitCode).toBe(2);
    const weight = await runCli(['canary', 'v1', '--weight', '130'], { cwd: dir });
    expect(weight.exitCode).toBe(2);
    expect(weight.stderr).toContain('expected a percentage from 0 to 100');
  });

  it('writes a commented depl.yaml that the next command loads', async () => {
    const init = await runCli(['init', '--json'], { cwd: dir });
    expect(init.exitCode).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ app: 'crawler', provider: 'local' });
    const text = await readFile(path.join(dir, 'depl.yaml'), 'utf8');
    expect(text).toMatch(/^# depl.yaml/);
    expect((await runCli(['init'], { cwd: dir })).exitCode).toBe(2); // refuses to overwrite

    const status = await runCli(['status', '--json'], { cwd: dir });
    // past config loading: what stops it now is the cluster (none yet), not the file
    expect(status.stderr).not.toMatch(/depl\.yaml has \d+ problem/);
    expect(JSON.parse(status.stdout)).toMatchObject({ error: { code: 'NO_CLUSTER', hint: "Run 'depl node-up' first." } });
  });

  it('status of a hibernating deployment reads .depl/ only, never the shelved nodes', async () => {
    // a manager at an address nothing answers on (TEST-NET-1): status would wait on its SSH if it tried
    const inventory = path.join(dir, '.depl', 'inventory.json');
    const record = path.join(dir, '.depl', 'hibernation.json');
    await writeFile(inventory, JSON.stringify({ version: 1, app: 'crawler', provider: 'openstack', network: 'crawler', updatedAt: '2026-12-06T12:00:00Z', nodes: [{ name: 'crawler-0', address: '192.0.2.1', role: 'manager' }] }));
    await writeFile(record, JSON.stringify({ app: 'crawler', phase: 'hibernating', since: '2026-12-01T08:00:00.000Z', by: 'ops@test', complete: true, live: '20261130-101500', releaseCopy: null, backups: {} }));
    try {
      const started = Date.now();
      const status = await runCli(['status'], { cwd: dir });
      expect(status.exitCode, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/^hibernation: hibernating since 2026-12-01T08:00:00.000Z \(by ops@test\)/);
      expect(status.stdout).toContain('crawler-0  192.0.2.1  manager  shelved');
      expect(Date.now() - started).toBeLessThan(10_000);
      const json = JSON.parse((await runCli(['status', '--json'], { cwd: dir })).stdout);
      expect(json).toMatchObject({ live: '20261130-101500', hibernation: { phase: 'hibernating', complete: true } });
    } finally {
      await rm(inventory, { force: true });
      await rm(record, { force: true });
    }
  });

  it('init writes depl.yaml 0600 and strong secrets into .depl/secrets; secrets list shows names and dates, never values', async () => {
    expect((await stat(path.join(dir, 'depl.yaml'))).mode & 0o777).toBe(0o600);
    const secretsFile = path.join(dir, '.depl', 'secrets');
    expect((await stat(secretsFile)).mode & 0o777).toBe(0o600);
    const before = await readFile(secretsFile, 'utf8');
    const values = [...before.matchAll(/^(api_token|redis_password)=(.+)$/gm)].map((m) => m[2]!);
    expect(values).toHaveLength(2);
    for (const value of values) expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const list = await runCli(['secrets', 'list', '--json'], { cwd: dir });
    expect(list.exitCode, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).secrets.map((r: { name: string; source: string }) => [r.name, r.source])).toEqual([['api_token', 'file'], ['redis_password', 'file']]);
    for (const value of values) expect(list.stdout + list.stderr).not.toContain(value);

    const rotated = await runCli(['secrets', 'set', 'api_token', '--generate'], { cwd: dir });
    expect(rotated.exitCode, rotated.stderr).toBe(0);
    expect(rotated.stdout).toContain('takes effect with the next `depl buildinst`');
    const after = await readFile(secretsFile, 'utf8');
    expect(after).not.toContain(values[0]!);
    expect(after).toContain(values[1]!);
    expect((await runCli(['secrets', 'set', 'not_declared', '--generate'], { cwd: dir })).exitCode).toBe(2);
  });

  it('rejects a broken depl.yaml with every problem named by path, exit 2', async () => {
    const file = path.join(dir, 'broken.yaml');
    await writeFile(file, [
      'app: crawler',
      'domain: "-bad-.example"',
      'provider: { type: local, nodes: "3" }',
      'services:',
      '  api: { image: api:1, port: 8000, http: true, helth: /healthz }',
    ].join('\n'));
    for (const command of [['status'], ['buildinst', '--version', 'v1'], ['node-up']]) {
      const run = await runCli(['--config', file, ...command], { cwd: dir });
      expect(run.exitCode, command.join(' ')).toBe(2);
      expect(run.stderr).toContain('has 3 problems');
      expect(run.stderr).toContain('domain: domain "-bad-.example" has a bad label "-bad-"');
      expect(run.stderr).toContain('provider.nodes: expected number, got string "3"');
      expect(run.stderr).toContain('services.api.helth: unknown key (did you mean "health"?)');
    }
  });

  it('never prints the value of a secret-looking key in a config error, in text or JSON, exit 2', async () => {
    // type errors first (zod checks the rest only once the types are right), then inline secrets
    const typed = path.join(dir, 'leaky-types.yaml');
    await writeFile(typed, [
      'app: crawler',
      'domain: crawler.localhost',
      'services:',
      '  api: { image: api:1, env: { ADMIN_PASSWORD: 90417730551, LOG_LEVEL: 7 } }',
    ].join('\n'));
    const inline = path.join(dir, 'leaky-inline.yaml');
    await writeFile(inline, [
      'app: crawler',
      'domain: crawler.localhost',
      'services:',
      '  api: { image: api:1, env: { DB_PASSWORD: "s3cr3t-Pa55w0rd-value" } }',
      'config: { redis: "redis://:inline-redis-pw@redis:6379", apiToken: "inline-token-value-123" }',
    ].join('\n'));
    for (const json of [false, true]) {
      const first = await runCli(['--config', typed, 'status', ...(json ? ['--json'] : [])], { cwd: dir });
      expect(first.exitCode).toBe(2);
      const second = await runCli(['--config', inline, 'status', ...(json ? ['--json'] : [])], { cwd: dir });
      expect(second.exitCode).toBe(2);
      const output = first.stdout + first.stderr + second.stdout + second.stderr;
      expect(output).toContain('services.api.env[ADMIN_PASSWORD]: expected string, got a number (value not shown)');
      expect(output).toContain('services.api.env.LOG_LEVEL: expected string, got number 7');
      expect(output).toContain('services.api.env[DB_PASSWORD]: looks like a secret');
      expect(output).toContain('config[apiToken]: looks like a secret');
      expect(output).toContain('config.redis: has a password in its URL');
      for (const value of ['90417730551', 's3cr3t-Pa55w0rd-value', 'inline-redis-pw', 'inline-token-value-123']) expect(output).not.toContain(value);
    }
  });

  it('refuses an ssh.key with a newline and an accessory node with inventory words in it, naming each, before node-up plans anything, exit 2', async () => {
    const folder = await mkdtemp(path.join(dir, 'inventory-'));
    const file = path.join(folder, 'depl.yaml');
    // each would have gone into the Ansible inventory node-up writes: a line of its own, and words on a host's line
    await writeFile(file, [
      'app: crawler',
      'domain: crawler.localhost',
      `provider: { type: local, nodes: 1, prefix: "dt-inv-${process.pid}" }`,
      'bootstrap: ansible',
      'ssh: { key: "id_ed25519\\nansible_become_exe=/tmp/evil" }',
      'services:',
      '  api: { image: api:1, port: 8000, http: true }',
      'accessories:',
      '  redis: { image: "redis:7", node: "node-1 ansible_become=true" }',
    ].join('\n'));
    // (not node-up itself: without the checks, this test would start a node)
    for (const command of [['node-up', '--plan'], ['status']]) {
      const run = await runCli(['--config', file, ...command], { cwd: folder });
      expect(run.exitCode, `${command.join(' ')}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toContain('ssh.key: expected a path without control characters (no newline, tab or escape)');
      expect(run.stderr).toContain('accessories.redis.node: expected "manager" or a node\'s hostname (like node-2): "node-1 ansible_become=true"');
    }
    // nothing made: no .depl/ (key, known hosts), no inventory
    expect(await readdir(folder)).toEqual(['depl.yaml']);
  });

  it('refuses a health path that names another host (//host), exit 2', async () => {
    const file = path.join(dir, 'health.yaml');
    await writeFile(file, 'app: crawler\ndomain: crawler.localhost\nservices:\n  api: { image: api:1, port: 8000, http: true, health: "//evil.example/ok" }\n');
    const run = await runCli(['--config', file, 'buildinst', '--version', 'v1'], { cwd: dir });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('services.api.health: health path "//evil.example/ok" starts with "//", which names another host');
  });

  it('rejects a version label that is not a DNS label before doing anything, exit 2', async () => {
    const run = await runCli(['buildinst', '--version', 'Release_1.0'], { cwd: dir });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/version "Release_1\.0"/);
  });

  it('says where the config is missing, with the fix', async () => {
    const run = await runCli(['status', '--config', path.join(dir, 'nope.yaml')], { cwd: dir });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain("Run 'depl init'");
  });

  it('prints a JSON error document on stdout with --json', async () => {
    const run = await runCli(['status', '--json', '--config', path.join(dir, 'nope.yaml')], { cwd: dir });
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: 'CONFIG_MISSING' } });
  });
});
