import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { crawlerClient } from '../../../src/cli/crawl-client.js';

async function project(withInventory: boolean): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'depl-crawl-target-'));
  await writeFile(path.join(dir, 'depl.yaml'), 'app: shop\ndomain: shop.localhost\nservices:\n  api: { image: x, port: 8000, http: true }\nconfig: { redis: "redis://redis:6379" }\n');
  if (withInventory) {
    await mkdir(path.join(dir, '.depl'));
    await writeFile(path.join(dir, '.depl', 'inventory.json'), JSON.stringify({
      version: 1, app: 'shop', provider: 'local', network: 'shop-net', updatedAt: '2026-11-22T00:00:00Z',
      nodes: [{ name: 'shop-node-2', address: '192.168.77.12', role: 'worker' }, { name: 'shop-node-1', address: '192.168.77.11', role: 'manager' }],
    }));
  }
  return path.join(dir, 'depl.yaml');
}

describe('where depl crawl sends requests', () => {
  it('defaults to the live version through the edge: the manager node, with the domain as Host', async () => {
    const target = await crawlerClient({ configFile: await project(true), env: {} });
    expect(target.where).toBe('http://shop.localhost/ (edge 192.168.77.11)');
  });

  it('says to run node-up when there is no cluster and no --api', async () => {
    await expect(crawlerClient({ configFile: await project(false), env: {} })).rejects.toThrow(/no cluster yet/);
  });

  it('takes --api without any depl.yaml, and refuses a non-http one', async () => {
    const missing = path.join(await mkdtemp(path.join(tmpdir(), 'depl-crawl-none-')), 'depl.yaml');
    expect((await crawlerClient({ api: 'http://127.0.0.1:8000', configFile: missing, env: {} })).where).toBe('http://127.0.0.1:8000/');
    await expect(crawlerClient({ api: 'file:///x', configFile: missing, env: {} })).rejects.toThrow(/http\(s\)/);
  });
});
