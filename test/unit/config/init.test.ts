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
