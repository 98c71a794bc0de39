import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { crawlerClient } from '../../../src/cli/crawl-client.js';
import { isLoopbackHost } from '../../../src/workflows/crawl.js';

async function project(extra: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'depl-crawl-tls-'));
  await writeFile(path.join(dir, 'depl.yaml'), `app: shop\ndomain: shop.example.org\nservices:\n  api: { image: x, port: 8000, http: true }\nsecrets: [api_token]\nconfig: { redis: "redis://redis:6379", apiTokenFile: /run/secrets/api_token }\n${extra}`);
  await mkdir(path.join(dir, '.depl'));
  await writeFile(path.join(dir, '.depl', 'secrets'), 'api_token=from-the-secrets-file-0123456789abcdef\n', { mode: 0o600 });
  await writeFile(path.join(dir, '.depl', 'inventory.json'), JSON.stringify({
    version: 1, app: 'shop', provider: 'openstack', network: 'shop-net', updatedAt: '2026-11-22T00:00:00Z',
    nodes: [{ name: 'shop-node-1', address: '203.0.113.11', role: 'manager' }],
  }));
  return path.join(dir, 'depl.yaml');
}

describe('depl crawl and the API token on the wire', () => {
  it('uses https to the edge, named by the domain, when tls: is on', async () => {
    const target = await crawlerClient({ configFile: await project('provider: { type: openstack }\n'), env: {} });
    expect(target.where).toBe('https://shop.example.org/ (edge 203.0.113.11)');
  });

  it('refuses to send the token over plain http to a cloud edge, unless --insecure', async () => {
    const configFile = await project('provider: { type: openstack }\ntls: { mode: "off" }\n');
    const refused = await crawlerClient({ configFile, env: {} }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UserError);
    expect((refused as UserError).code).toBe('CRAWL_INSECURE');
    expect((refused as UserError).message).toBe('refusing to send the API token over plain http to 203.0.113.11: anyone on the path could read it');
    expect((await crawlerClient({ configFile, env: {}, insecure: true })).where).toBe('http://shop.example.org/ (edge 203.0.113.11)');
  });

  it('--api: plain http only to loopback with a token; https anywhere; no token, no refusal', async () => {
    const configFile = await project('');
    await expect(crawlerClient({ api: 'http://198.51.100.7:8000', configFile, env: {} })).rejects.toThrow(/refusing to send the API token/);
    expect((await crawlerClient({ api: 'http://127.0.0.1:8000', configFile, env: {} })).where).toBe('http://127.0.0.1:8000/');
    expect((await crawlerClient({ api: 'https://198.51.100.7', configFile, env: {} })).where).toBe('https://198.51.100.7/');
    const noToken = path.join(await mkdtemp(path.join(tmpdir(), 'depl-crawl-none-')), 'depl.yaml');
    expect((await crawlerClient({ api: 'http://198.51.100.7:8000', configFile: noToken, env: {} })).where).toBe('http://198.51.100.7:8000/');
  });

  it('knows loopback when it sees it', () => {
    for (const host of ['localhost', '127.0.0.1', '127.8.9.10', '[::1]', 'api.localhost']) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['10.0.0.1', '192.168.77.11', 'example.org', '127.example.org']) expect(isLoopbackHost(host)).toBe(false);
  });
});
