import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkSeedFiles } from '../../../src/apply/seed-file.js';
import { parseConfig } from '../../../src/config/load.js';
import { seedFileSource } from '../../../src/workflows/adapter-slices.js';

/** `seed: { file }` is checked before the cluster is reached (src/apply/seed-file.ts): a dump of the project, never one of depl's own files or a key. */
let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'depl-seed-'));
  await mkdir(path.join(root, '.depl', 'backups'), { recursive: true });
  await writeFile(path.join(root, '.depl', 'backups', 'shop-db-main.sql'), 'CREATE TABLE users (id int);\n');
  await writeFile(path.join(root, '.depl', 'secrets'), 'x');
  await writeFile(path.join(root, 'key.pem'), '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const seeding = (file: string) => seedFileSource({
  root, file: path.join(root, 'depl.yaml'),
  config: parseConfig(`
app: shop
domain: shop.test
services: { api: { image: "shop:1" } }
accessories:
  db:
    image: "postgres:16"
    env: { POSTGRES_PASSWORD_FILE: /run/secrets/db_password }
    secrets: [db_password]
    perBranch: database
    seed: { file: ${JSON.stringify(file)} }
secrets: [db_password]
`),
});

describe('a branch database seed file', () => {
  it('may be a dump prune wrote under .depl/backups (resolved against depl.yaml\'s folder)', async () => {
    expect(await checkSeedFiles(seeding('.depl/backups/shop-db-main.sql'))).toEqual({ db: path.join(root, '.depl', 'backups', 'shop-db-main.sql') });
  });

  it.each([
    ['../elsewhere.sql', 'climbs out of the project folder'],
    ['/etc/passwd', 'outside the project'],
    ['.depl/secrets', "one of depl's own files"],
    ['depl.yaml', "one of depl's own files"],
    ['key.pem', 'looks like a secret'],
    ['.depl/backups/missing.sql', 'no file at'],
    ['.depl/backups', 'not a regular file'],
  ])('refuses %s (exit 2, nothing changed): %s', async (file, why) => {
    await expect(checkSeedFiles(seeding(file))).rejects.toMatchObject({ exitCode: 2, code: 'BRANCH_SEED_FILE', message: expect.stringContaining(why) });
  });

  it('refuses a symlink, which may point out of the project', async () => {
    await symlink('/etc/hostname', path.join(root, 'link.sql'));
    await expect(checkSeedFiles(seeding('link.sql'))).rejects.toMatchObject({ code: 'BRANCH_SEED_FILE', message: expect.stringContaining('not a regular file') });
  });
});
