import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig, type LoadedConfig } from '../../../src/config/load.js';
import { generateMissingSecrets, resolveSecrets, secretsFilePath } from '../../../src/apply/secrets-store.js';
import { checkSecretValue, parseSecretsFile, renderSecretsFile, secretVersion, swarmSecretName } from '../../../src/plan/secrets.js';
import { listSecrets, removeSecret, setSecret } from '../../../src/workflows/secrets.js';
import { UserError } from '../../../src/errors.js';
import { secretsSource } from '../../../src/workflows/adapter-slices.js';

describe('secrets file format', () => {
  it('round-trips names, values (quoted where needed) and change times', () => {
    const entries = [
      { name: 'api_token', value: 'abcDEF123_-', changedAt: '2026-11-29T10:00:00.000Z' },
      { name: 'db_pass', value: 'has space # and hash', changedAt: null },
      { name: 'quotes', value: `it's "both"`, changedAt: '2026-11-29T11:00:00.000Z' },
    ];
    const text = renderSecretsFile(entries);
    expect(parseSecretsFile(text)).toEqual(expect.arrayContaining(entries));
    expect(text).toMatch(/^# depl secrets/);
  });

  it('refuses values the file cannot hold', () => {
    expect(checkSecretValue('')).toMatchObject({ ok: false });
    expect(checkSecretValue('two\nlines')).toMatchObject({ ok: false });
    expect(checkSecretValue('fine-value')).toEqual({ ok: true });
  });

  it('versions a swarm secret by its value: same value same name, new value new name', () => {
    const a = secretVersion('crawler', 'api_token', 'value-one');
    expect(secretVersion('crawler', 'api_token', 'value-one')).toBe(a);
    expect(secretVersion('crawler', 'api_token', 'value-two')).not.toBe(a);
    expect(secretVersion('other', 'api_token', 'value-one')).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{12}$/);
    expect(swarmSecretName('crawler', 'api_token', a)).toBe(`crawler-api_token-${a}`);
  });
});

describe('secrets store and depl secrets set|list|rm', () => {
  let root: string;
  let loaded: LoadedConfig;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'depl-secrets-'));
    const file = path.join(root, 'depl.yaml');
    const config = parseConfig('app: crawler\ndomain: crawler.localhost\nsecrets: [api_token, redis_password]\nservices:\n  api: { image: api:1, secrets: [api_token] }\n');
    loaded = { config, file, root };
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('generates strong values once, in a 0600 file in a git-ignored 0700 folder', async () => {
    const now = new Date('2026-11-29T12:00:00Z');
    expect(await generateMissingSecrets(root, ['api_token', 'redis_password'], now, {})).toEqual(['api_token', 'redis_password']);
    expect((await stat(secretsFilePath(root))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(root, '.depl'))).mode & 0o777).toBe(0o700);
    expect(await readFile(path.join(root, '.depl', '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    const first = await resolveSecrets(secretsSource(loaded), {});
    expect(first.map((s) => s.value.reveal().length)).toEqual([43, 43]);
    expect(await generateMissingSecrets(root, ['api_token', 'redis_password'], now, {})).toEqual([]);
    const again = await resolveSecrets(secretsSource(loaded), {});
    expect(again.map((s) => s.value.reveal())).toEqual(first.map((s) => s.value.reveal()));
  });

  it('takes DEPL_SECRET_<NAME> over the file, and names what is missing without printing values', async () => {
    await setSecret(secretsSource(loaded), 'api_token', { now: new Date(), readValue: async () => 'from-the-file-1234567890\n' });
    const error = await resolveSecrets(secretsSource(loaded), {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toContain('no value for secret redis_password');
    const resolved = await resolveSecrets(secretsSource(loaded), { DEPL_SECRET_REDIS_PASSWORD: 'from-env-0987654321', DEPL_SECRET_API_TOKEN: 'env-wins-1234567890' });
    expect(resolved.map((s) => [s.name, s.source, s.value.reveal()])).toEqual([
      ['api_token', 'env', 'env-wins-1234567890'],
      ['redis_password', 'env', 'from-env-0987654321'],
    ]);
    expect(JSON.stringify(resolved)).not.toMatch(/env-wins|from-env/);
  });

  it('lists names, sources and change times, never values; rm removes; undeclared names are refused', async () => {
    await setSecret(secretsSource(loaded), 'api_token', { now: new Date('2026-11-29T13:00:00Z'), readValue: async () => 'the-value-1234567890' });
    const rows = await listSecrets(secretsSource(loaded), {});
    expect(rows).toEqual([
      { name: 'api_token', declared: true, source: 'file', changedAt: '2026-11-29T13:00:00.000Z' },
      { name: 'redis_password', declared: true, source: 'missing', changedAt: null },
    ]);
    expect(JSON.stringify(rows)).not.toContain('the-value');
    await expect(setSecret(secretsSource(loaded), 'nope', { now: new Date(), readValue: async () => 'x' })).rejects.toThrow(/does not declare a secret named nope/);
    await expect(setSecret(secretsSource(loaded), 'api_token', { now: new Date(), readValue: async () => '' })).rejects.toThrow(/is empty/);
    expect(await removeSecret(secretsSource(loaded), 'api_token')).toEqual({ name: 'api_token', removed: true, stillDeclared: true });
    await expect(removeSecret(secretsSource(loaded), 'api_token')).rejects.toThrow(/no secret named api_token/);
  });

  it('refuses a secrets file others can read', async () => {
    await setSecret(secretsSource(loaded), 'api_token', { now: new Date(), generate: true, readValue: async () => '' });
    await chmod(secretsFilePath(root), 0o644);
    await expect(resolveSecrets(secretsSource(loaded), {})).rejects.toMatchObject({ message: expect.stringContaining('is readable by others (mode 644)'), hint: `Run: chmod 600 ${secretsFilePath(root)}` });
  });
});
