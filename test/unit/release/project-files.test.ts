import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { readProjectFiles } from '../../../src/apply/project-files.js';
import { projectSource } from '../../../src/plan/project-files.js';
import { accessoryStartOrder, memoryBytes, projectFileDocument } from '../../../src/plan/services.js';
import { projectFilesSource } from '../../../src/workflows/adapter-slices.js';

const yaml = (files: string) => `app: shop
domain: shop.localhost
services:
  proxy:
    image: nginx
    files: ${files}
`;

async function project(files: string) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'depl-files-'));
  await writeFile(path.join(root, 'nginx.conf'), 'events {}\n');
  await mkdir(path.join(root, 'prom', 'rules'), { recursive: true });
  await writeFile(path.join(root, 'prom', 'prometheus.yml'), 'global: {}\n');
  await writeFile(path.join(root, 'prom', 'rules', 'a.yml'), 'groups: []\n');
  return { root, file: path.join(root, 'depl.yaml'), config: parseConfig(yaml(files)) };
}

describe('project files mounted as swarm configs', () => {
  it('reads a file, and a folder as one file per file under it at the same relative path', async () => {
    const loaded = await project('{ /etc/nginx/nginx.conf: nginx.conf, /etc/prometheus: ./prom/ }');
    const files = await readProjectFiles(projectFilesSource(loaded));
    expect(files.map((f) => [f.owner, f.target, f.data.toString()])).toEqual([
      ['proxy', '/etc/nginx/nginx.conf', 'events {}\n'],
      ['proxy', '/etc/prometheus/prometheus.yml', 'global: {}\n'],
      ['proxy', '/etc/prometheus/rules/a.yml', 'groups: []\n'],
    ]);
  });

  it("never mounts depl's own files: a folder mounted whole leaves them out, and naming one is refused (exit 2)", async () => {
    const whole = await project('{ /app: . }');
    await mkdir(path.join(whole.root, '.depl', 'backups'), { recursive: true });
    await writeFile(path.join(whole.root, '.depl', 'id_ed25519'), '-----BEGIN OPENSSH PRIVATE KEY-----\n');
    await writeFile(path.join(whole.root, '.depl', 'secrets'), 'db_password=x\n');
    await writeFile(whole.file, yaml('{ /app: . }'));
    const targets = (await readProjectFiles(projectFilesSource(whole))).map((f) => f.target);
    expect(targets).toEqual(['/app/nginx.conf', '/app/prom/prometheus.yml', '/app/prom/rules/a.yml']);
    for (const named of ['.depl/secrets', 'depl.yaml', '.depl']) {
      const refused = await project(`{ /x: ${named} }`);
      await mkdir(path.join(refused.root, '.depl'), { recursive: true });
      await writeFile(path.join(refused.root, '.depl', 'secrets'), 'db_password=x\n');
      await writeFile(refused.file, yaml(`{ /x: ${named} }`));
      await expect(readProjectFiles(projectFilesSource(refused))).rejects.toMatchObject({ code: 'PROJECT_FILE_OPERATOR', exitCode: 2 });
    }
  });

  it('names each config after its content, so a changed file is a new config', () => {
    const a = projectFileDocument('shop', { owner: 'proxy', target: '/x', data: Buffer.from('one') });
    const b = projectFileDocument('shop', { owner: 'other', target: '/y', data: Buffer.from('one') });
    const c = projectFileDocument('shop', { owner: 'proxy', target: '/x', data: Buffer.from('two') });
    expect(a.name).toMatch(/^shop-file-[0-9a-f]{16}$/);
    expect(a.name).toBe(b.name);
    expect(c.name).not.toBe(a.name);
  });

  it('refuses paths outside the project, symlinks and missing files with exit 2, before the cluster is reached', async () => {
    await expect(readProjectFiles(projectFilesSource(await project('{ /x: ../elsewhere }')))).rejects.toThrow(/climbs out of the project folder/);
    await expect(readProjectFiles(projectFilesSource(await project('{ /x: /etc/passwd }')))).rejects.toThrow(/outside the project/);
    await expect(readProjectFiles(projectFilesSource(await project('{ /x: missing.conf }')))).rejects.toThrow(/no file or folder/);
    const linked = await project('{ /etc/prometheus: prom }');
    await symlink('/etc/passwd', path.join(linked.root, 'prom', 'passwd'));
    await expect(readProjectFiles(projectFilesSource(linked))).rejects.toMatchObject({ code: 'PROJECT_FILE_KIND' });
    expect(projectSource('./a/../b/')).toEqual({ ok: true, path: 'b' });
    expect(projectSource('/var/run/docker.sock')).toMatchObject({ ok: false, reason: expect.stringMatching(/Docker socket/) });
  });
});

describe('accessories and resources', () => {
  it('creates accessories after those they depend on', () => {
    expect(accessoryStartOrder({ web: { dependsOn: ['cache', 'db'] }, cache: { dependsOn: ['db'] }, db: { dependsOn: [] } })).toEqual(['db', 'cache', 'web']);
    expect(accessoryStartOrder({ a: { dependsOn: ['b'] }, b: { dependsOn: ['a'] } })).toEqual(['b', 'a']);
  });

  it('reads compose sizes in powers of 1024', () => {
    expect([memoryBytes('512m'), memoryBytes('1g'), memoryBytes('100'), memoryBytes('1.5k')]).toEqual([512 * 1024 ** 2, 1024 ** 3, 100, 1536]);
  });
});
