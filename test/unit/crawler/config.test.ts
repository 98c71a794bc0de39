import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { applyEnvOverrides, loadServiceConfig, parseServiceConfig, robotsNameOf } from '../../../crawler/src/config.js';

const minimal = { redis: 'redis://127.0.0.1:6379', apiToken: 'a-long-token' };

describe('service config', () => {
  it('fills defaults around the required keys', () => {
    const config = parseServiceConfig(minimal);
    expect(config.port).toBe(8000);
    expect(config.worker.concurrency).toBe(32);
    expect(config.allow).toEqual({ hosts: [], networks: [] });
  });

  it('keeps a robots.txt at most 24 hours (RFC 9309 2.4)', () => {
    expect(parseServiceConfig({ ...minimal, worker: { robotsCache: { ttlSeconds: 86_400 } } }).worker.robotsCache.ttlSeconds).toBe(86_400);
    expect(() => parseServiceConfig({ ...minimal, worker: { robotsCache: { ttlSeconds: 86_401 } } })).toThrow(/worker\.robotsCache\.ttlSeconds/);
  });

  it('answers robots.txt and opt-outs to the configured robotsName, else to the user agent\'s product token', () => {
    expect(robotsNameOf(parseServiceConfig(minimal).worker)).toBe('depl-crawler');
    const browserLike = { userAgent: 'Mozilla/5.0 (compatible; Depl-Crawler/1.0; +https://example.org/bot)' };
    expect(robotsNameOf(parseServiceConfig({ ...minimal, worker: browserLike }).worker)).toBe('depl-crawler');
    expect(robotsNameOf(parseServiceConfig({ ...minimal, worker: { ...browserLike, robotsName: 'Depl_Research' } }).worker)).toBe('depl_research');
    expect(() => parseServiceConfig({ ...minimal, worker: { robotsName: 'depl-crawler/1.0' } })).toThrow(/worker\.robotsName: expected a robots\.txt product token: letters, "-" and "_" only/);
  });

  it('names every invalid key', () => {
    expect(() => parseServiceConfig({ redis: 'http://x', apiToken: 'a-long-token', allow: { networks: ['10.0.0.0/99'] } }))
      .toThrow(/redis: expected a redis:\/\/.*allow\.networks\.0: "10\.0\.0\.0\/99" is not an IP/);
  });

  it('lets DEPL_ variables override keys, nested with a double underscore', () => {
    const out = applyEnvOverrides(minimal, {
      DEPL_API_TOKEN: 'from-env-token', DEPL_WORKER__CONCURRENCY: '4', DEPL_CONFIG: 'depl.yaml', DEPL_CONFIG_FILE: '/run/depl/config.json', DEPL_CONFIG_URL: 'file:///run/depl/config.json', PATH: '/bin',
      DEPL_ALLOW__NETWORKS: '["127.0.0.1/32"]',
    });
    expect(out).toEqual({ ...minimal, apiToken: 'from-env-token', worker: { concurrency: 4 }, allow: { networks: ['127.0.0.1/32'] } });
  });

  it('loads a file:// URL and explains in one line when it cannot', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'crawler-config-'));
    const file = path.join(dir, 'c.json');
    await writeFile(file, JSON.stringify(minimal));
    await expect(loadServiceConfig(pathToFileURL(file).href, {})).resolves.toMatchObject({ redis: minimal.redis });
    await expect(loadServiceConfig(pathToFileURL(path.join(dir, 'none.json')).href, {})).rejects.toThrow(/^cannot load config from file:.*none\.json: ENOENT/);
    await writeFile(file, '{nope');
    await expect(loadServiceConfig(pathToFileURL(file).href, {})).rejects.toThrow(/is not valid JSON/);
    await expect(loadServiceConfig('ftp://x/c.json', {})).rejects.toThrow(/unsupported scheme ftp:/);
    await expect(loadServiceConfig(undefined, {})).rejects.toThrow(/missing --config/);
    // a depl.yaml written before configArg existed: the document is mounted, the service was not asked to take it
    await expect(loadServiceConfig(undefined, { DEPL_CONFIG_URL: 'file:///run/depl/config.json' }))
      .rejects.toThrow('missing --config <URL>: depl mounted the config at file:///run/depl/config.json, but this service is not started with it; set configArg: true on the service in depl.yaml');
  });

  it('reads the token and the Redis password from their files (swarm secrets), and says which one is missing', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'crawler-secrets-'));
    await writeFile(path.join(dir, 'api_token'), 'k3J9x-Qp0vTz_w8LmN4rYs2aBcD5eF7gH1iJ6uV\n');
    await writeFile(path.join(dir, 'redis_password'), 'redis-pw-0123456789');
    const file = path.join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ redis: 'redis://redis:6379', apiTokenFile: path.join(dir, 'api_token'), redisPasswordFile: path.join(dir, 'redis_password') }));
    const config = await loadServiceConfig(pathToFileURL(file).href, {});
    expect(config.apiToken?.reveal()).toBe('k3J9x-Qp0vTz_w8LmN4rYs2aBcD5eF7gH1iJ6uV');
    expect(config.redisPassword?.reveal()).toBe('redis-pw-0123456789');
    expect(JSON.stringify(config)).not.toMatch(/k3J9x|redis-pw/);
    await writeFile(file, JSON.stringify({ redis: 'redis://redis:6379', apiTokenFile: '/run/secrets/nope-not-mounted' }));
    await expect(loadServiceConfig(pathToFileURL(file).href, {})).rejects.toThrow('cannot read /run/secrets/nope-not-mounted (apiTokenFile): ENOENT; is the secret mounted into this service?');
    // a worker has no token mounted, and does not look for it
    await expect(loadServiceConfig(pathToFileURL(file).href, {}, { readToken: false })).resolves.toMatchObject({ apiTokenFile: '/run/secrets/nope-not-mounted' });
  });

  it('takes the swift image store only with its section, and its key only from a file', async () => {
    expect(parseServiceConfig(minimal).images.store).toBe('redis');
    expect(() => parseServiceConfig({ ...minimal, images: { store: 'swift' } })).toThrow(/images\.swift: images\.store is swift but images\.swift \(keystone, or tempauth's authUrl, user and keyFile\) is missing/);
    const swift = { authUrl: 'http://swift.internal:8080/auth/v1.0', user: 'crawler:images', keyFile: '/run/secrets/nope' };
    // an inline key would sit in plain config: refused, naming the key that takes its file
    expect(() => parseServiceConfig({ ...minimal, images: { store: 'swift', swift: { ...swift, key: 'plain' } } })).toThrow(/images\.swift\.key: a secret is not accepted inline: put it in a file \(a swarm secret under \/run\/secrets\) and name that file in keyFile/);
    expect(() => parseServiceConfig({ ...minimal, images: { store: 'swift', swift: { authUrl: swift.authUrl, user: swift.user } } })).toThrow(/images\.swift: give keystone .* or all of authUrl, user and keyFile/);
    const dir = await mkdtemp(path.join(tmpdir(), 'crawler-swift-'));
    await writeFile(path.join(dir, 'swift_key'), 'swift-key-0123456789\n');
    const file = path.join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ ...minimal, images: { store: 'swift', swift: { ...swift, keyFile: path.join(dir, 'swift_key') } } }));
    const config = await loadServiceConfig(pathToFileURL(file).href, {});
    expect(config.images.swift).toMatchObject({ container: 'crawler-images', maxJobBytes: 10 * 1024 ** 3 });
    expect(config.swiftKey?.reveal()).toBe('swift-key-0123456789');
    expect(JSON.stringify(config)).not.toMatch(/swift-key-0123/);
    await writeFile(file, JSON.stringify({ ...minimal, images: { store: 'swift', swift } }));
    await expect(loadServiceConfig(pathToFileURL(file).href, {})).rejects.toThrow('cannot read /run/secrets/nope (images.swift.keyFile): ENOENT');
  });

  it("takes Keystone v3 for Swift (Nectar's): an application credential or a password login, secrets only from files, with clear refusals", async () => {
    const authUrl = 'https://keystone.rc.nectar.org.au:5000/v3';
    const swiftWith = (keystone: Record<string, unknown>, more: Record<string, unknown> = {}) => ({ ...minimal, images: { store: 'swift', swift: { keystone: { authUrl, ...keystone }, ...more } } });
    const credential = { applicationCredentialId: 'ac0123', applicationCredentialSecretFile: '/run/secrets/swift_secret' };
    const parsed = parseServiceConfig(swiftWith(credential)).images.swift!;
    expect(parsed.keystone).toMatchObject({ ...credential, interface: 'public' });
    expect(parsed.keystone!.region).toBeUndefined();
    expect(parsed.unfinishedJobSeconds).toBe(7 * 24 * 3600);
    expect(parseServiceConfig(swiftWith({ username: 'me@uni.edu.au', passwordFile: '/run/secrets/pw', projectName: 'pt-1234', region: 'Melbourne', interface: 'internal' })).images.swift!.keystone)
      .toMatchObject({ userDomainName: 'Default', projectDomainName: 'Default', region: 'Melbourne', interface: 'internal' });

    const refused = (raw: unknown) => {
      try {
        parseServiceConfig(raw);
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refused(swiftWith({ applicationCredentialId: 'ac0123', applicationCredentialSecret: 'in-plain-sight' })))
      .toMatch(/images\.swift\.keystone\.applicationCredentialSecret: a secret is not accepted inline: .* name that file in applicationCredentialSecretFile/);
    expect(refused(swiftWith({ username: 'me', password: 'in-plain-sight', projectId: 'p' }))).toMatch(/images\.swift\.keystone\.password: a secret is not accepted inline: .* in passwordFile/);
    expect(refused(swiftWith({ applicationCredentialId: 'ac0123' }))).toMatch(/images\.swift\.keystone: applicationCredentialId needs applicationCredentialSecretFile/);
    expect(refused(swiftWith({ ...credential, username: 'me' }))).toMatch(/images\.swift\.keystone: give an application credential .* or a password login .*, not both/);
    expect(refused(swiftWith({}))).toMatch(/images\.swift\.keystone: give applicationCredentialId and applicationCredentialSecretFile \(preferred\), or username, passwordFile and projectId or projectName/);
    expect(refused(swiftWith({ username: 'me', passwordFile: '/p' }))).toMatch(/a password login needs one of projectId or projectName/);
    expect(refused(swiftWith({ username: 'me', passwordFile: '/p', projectId: 'a', projectName: 'b' }))).toMatch(/a password login needs one of projectId or projectName/);
    expect(refused(swiftWith(credential, { authUrl: 'http://swift:8080/auth/v1.0' }))).toMatch(/images\.swift: give either keystone .* or authUrl, user and keyFile .*, not both/);
    expect(refused(swiftWith({ ...credential, interface: 'private' }))).toMatch(/images\.swift\.keystone\.interface/);
    expect(refused(swiftWith({ ...credential, authUrl: 'keystone.example:5000' }))).toMatch(/images\.swift\.keystone\.authUrl: expected Keystone's http\(s\):\/\/ URL/);

    // the secret is read from its file at start, and never shows in the config
    const dir = await mkdtemp(path.join(tmpdir(), 'crawler-keystone-'));
    await writeFile(path.join(dir, 'secret'), 'ac-secret-0123456789\n');
    const file = path.join(dir, 'c.json');
    await writeFile(file, JSON.stringify(swiftWith({ applicationCredentialId: 'ac0123', applicationCredentialSecretFile: path.join(dir, 'secret') })));
    const config = await loadServiceConfig(pathToFileURL(file).href, {});
    expect(config.swiftKey?.reveal()).toBe('ac-secret-0123456789');
    expect(JSON.stringify(config)).not.toMatch(/ac-secret-0123/);
    await writeFile(file, JSON.stringify(swiftWith({ username: 'me', passwordFile: path.join(dir, 'none'), projectId: 'p' })));
    await expect(loadServiceConfig(pathToFileURL(file).href, {})).rejects.toThrow(`cannot read ${path.join(dir, 'none')} (images.swift.keystone.passwordFile): ENOENT`);
  });
});
