import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { contextFiles } from '../../../src/apply/build-context.js';
import { DOCKERIGNORE_MARK, deplIgnoreLines, withDeplIgnores } from '../../../src/plan/dockerignore.js';
import { initConfig } from '../../../src/workflows/init.js';

const base = { app: 'shop', domain: 'shop.localhost', provider: 'local' as const, force: false };
const made: string[] = [];

async function folder(files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-init-ignore-'));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

afterEach(async () => {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe("the .dockerignore lines depl init adds (as data)", () => {
  it('lists depl\'s files relative to a context that holds depl.yaml\'s folder, and nothing for one that does not', () => {
    expect(deplIgnoreLines('/p', '/p', '/p/depl.yaml')).toEqual(['.depl', 'depl.yaml', 'ansible/generated_hosts.ini', 'clouds.yaml', 'secure.yaml']);
    expect(deplIgnoreLines('/p', '/p/deploy', '/p/deploy/prod.yaml')).toEqual(['deploy/.depl', 'deploy/prod.yaml', 'deploy/ansible/generated_hosts.ini', 'deploy/clouds.yaml', 'deploy/secure.yaml']);
    expect(deplIgnoreLines('/p/web', '/p', '/p/depl.yaml')).toBeNull();
  });

  it("adds only the missing lines after the user's, once", () => {
    const lines = ['.depl', 'depl.yaml'];
    expect(withDeplIgnores(null, lines)).toBe(`${DOCKERIGNORE_MARK}\n.depl\ndepl.yaml\n`);
    const mine = 'node_modules\n# my notes\n/.depl/\n';
    const added = withDeplIgnores(mine, lines)!;
    expect(added).toBe(`node_modules\n# my notes\n/.depl/\n\n${DOCKERIGNORE_MARK}\ndepl.yaml\n`);
    expect(withDeplIgnores(added, lines)).toBeNull();
    expect(withDeplIgnores('*.log', lines)).toBe(`*.log\n\n${DOCKERIGNORE_MARK}\n.depl\ndepl.yaml\n`);
  });
});

describe('depl init writes a .dockerignore', () => {
  it('for a Dockerfile app: creates one that leaves depl\'s files out of a plain docker build too', async () => {
    const dir = await folder({ 'Dockerfile': 'FROM scratch\nCOPY . /app\n', 'app.js': '1\n' });
    const result = await initConfig({ ...base, file: path.join(dir, 'depl.yaml') });
    expect(result.dockerignores).toEqual([path.join(dir, '.dockerignore')]);
    await mkdir(path.join(dir, '.depl'), { recursive: true });
    await writeFile(path.join(dir, '.depl', 'id_ed25519'), 'key');
    // .dockerignore alone (no depl rules): what `docker build .` would send
    const ignored = await contextFiles(dir, { paths: [], names: [], backups: null });
    expect(ignored).toEqual(['.dockerignore', 'Dockerfile', 'app.js']);
  });

  it("appends to the user's own .dockerignore without touching their lines, and a second init adds nothing", async () => {
    const mine = '# mine\nnode_modules\n!keep.me';
    const dir = await folder({ 'Dockerfile': 'FROM scratch\n', '.dockerignore': mine });
    await initConfig({ ...base, file: path.join(dir, 'depl.yaml') });
    const first = await readFile(path.join(dir, '.dockerignore'), 'utf8');
    expect(first.startsWith(`${mine}\n\n${DOCKERIGNORE_MARK}\n.depl\ndepl.yaml\n`)).toBe(true);
    const before = await stat(path.join(dir, '.dockerignore'));
    const again = await initConfig({ ...base, force: true, file: path.join(dir, 'depl.yaml') });
    expect(again.dockerignores).toEqual([]);
    expect(await readFile(path.join(dir, '.dockerignore'), 'utf8')).toBe(first);
    expect((await stat(path.join(dir, '.dockerignore'))).mtimeMs).toBe(before.mtimeMs);
  });

  it('for a compose app: in each build context that holds depl.yaml, under the config file\'s own name; not in subfolder contexts', async () => {
    const dir = await folder({
      'compose.yaml': 'services:\n  web: { build: ., ports: ["80:3000"] }\n  api: { build: ./api, ports: ["81:4000"] }\n',
      'Dockerfile': 'FROM scratch\n',
      'api/Dockerfile': 'FROM scratch\n',
    });
    const result = await initConfig({ ...base, file: path.join(dir, 'prod.yaml') });
    expect(result.dockerignores).toEqual([path.join(dir, '.dockerignore')]);
    expect(await readFile(path.join(dir, '.dockerignore'), 'utf8')).toContain('\nprod.yaml\n');
    await expect(stat(path.join(dir, 'api', '.dockerignore'))).rejects.toThrow();
  });

  it('leaves the example crawler\'s context (depl\'s own package) alone', async () => {
    const dir = await folder();
    const result = await initConfig({ ...base, file: path.join(dir, 'depl.yaml') });
    expect(result.dockerignores).toEqual([]);
  });
});
