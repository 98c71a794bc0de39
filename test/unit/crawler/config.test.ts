import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { applyEnvOverrides, loadServiceConfig, parseServiceConfig } from '../../../crawler/src/config.js';

const minimal = { redis: 'redis://127.0.0.1:6379', apiToken: 'a-long-token' };

describe('service config', () => {
  it('fills defaults around the required keys', () => {
    const config = parseServiceConfig(minimal);
    expect(config.port).toBe(8000);
    expect(config.worker.concurrency).toBe(32);
    expect(config.allow).toEqual({ hosts: [], networks: [] });
  });

  it('names every invalid key', () => {
    expect(() => parseServiceConfig({ redis: 'http://x', apiToken: 'a-long-token', allow: { networks: ['10.0.0.0/99'] } }))
      .toThrow(/redis: expected a redis:\/\/.*allow\.networks\.0: "10\.0\.0\.0\/99" is not an IP/);
  });

  it('lets DEPL_ variables override keys, nested with a double underscore', () => {
    const out = applyEnvOverrides(minimal, {
      DEPL_API_TOKEN: 'from-env-token', DEPL_WORKER__CONCURRENCY: '4', DEPL_CONFIG: 'depl.yaml', PATH: '/bin',
      DEPL_ALLOW__NETWORKS: '["127.0.0.1/32"]',
    });
    expect(out).toEqual({ ...minimal, apiToken: 'from-env-token', worker: { concurrency: 4 }, allow: { networks: ['127.0.0.1/32'] } });
  });

  it('loads a file:// URL and explains in one line when it cannot', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'crawler-config-'));
    const file = path.join(dir, 'c.json');
    await writeFile(file, JSON.stringify(minimal));
    await expect(loadServiceConfig(pathToFileURL(file).href, {})).resolves.toMatchObject(minimal);
    await expect(loadServiceConfig(pathToFileURL(path.join(dir, 'none.json')).href, {})).rejects.toThrow(/^cannot load config from file:.*none\.json: ENOENT/);
    await writeFile(file, '{nope');
    await expect(loadServiceConfig(pathToFileURL(file).href, {})).rejects.toThrow(/is not valid JSON/);
    await expect(loadServiceConfig('ftp://x/c.json', {})).rejects.toThrow(/unsupported scheme ftp:/);
    await expect(loadServiceConfig(undefined, {})).rejects.toThrow(/missing --config/);
  });
});
