import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureBackupsDir, openPayload, verifyBackupFile, writeBackupFile } from '../../src/apply/backup-file.js';
import { UserError } from '../../src/errors.js';
import type { BackupManifest } from '../../src/plan/backup.js';

/** The backup file on the operator's machine: written whole or not at all, read back only when it checks out. */
let dir: string;
beforeEach(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'depl-backup-file-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

const rdb = Buffer.concat([Buffer.from('REDIS0010'), Buffer.alloc(4000, 7)]);
const build = (facts: { size: number; sha256: string }): BackupManifest => ({
  format: 'depl-backup', formatVersion: 1, app: 'crawler', accessory: 'redis', type: 'redis', image: 'redis:7', createdAt: '2026-11-30T03:00:00.000Z',
  createdBy: 'me@laptop', node: 'node-1', volume: { name: 'redis-data', target: '/data' },
  payload: { kind: 'redis-rdb', file: 'dump.rdb', size: facts.size, sha256: facts.sha256 }, redis: { version: '7.0.15', keys: 1, aof: false, rdbVersion: 10 },
});

async function written(): Promise<string> {
  const file = path.join(dir, 'b.tar');
  await writeBackupFile(file, 'dump.rdb', Readable.from([rdb.subarray(0, 100), rdb.subarray(100)]), build);
  return file;
}

async function pack(file: string, entries: { name: string; data: Buffer | string }[]): Promise<void> {
  const p = tar.pack();
  for (const e of entries) p.entry({ name: e.name }, e.data);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  await writeFile(file, Buffer.concat(chunks));
}

async function refusal(file: string): Promise<UserError> {
  const error = await verifyBackupFile(file).then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(UserError);
  return error as UserError;
}

describe('backup file', () => {
  it('writes manifest.json then the payload, 0600, with no temporary file left, and reads it back', async () => {
    const file = await written();
    expect(((await stat(file)).mode & 0o777).toString(8)).toBe('600');
    expect(await readdir(dir)).toEqual(['b.tar']);
    const { manifest, head } = await verifyBackupFile(file);
    expect(manifest.payload).toEqual({ kind: 'redis-rdb', file: 'dump.rdb', size: rdb.length, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(head.subarray(0, 9).toString()).toBe('REDIS0010');
    const chunks: Buffer[] = [];
    for await (const c of await openPayload(file, 'dump.rdb')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(rdb)).toBe(true);
  });

  it('leaves nothing behind when the payload is refused', async () => {
    const file = path.join(dir, 'b.tar');
    await expect(writeBackupFile(file, 'dump.rdb', Readable.from([rdb]), () => { throw new Error('not an RDB file'); })).rejects.toThrow('not an RDB file');
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a changed byte, a cut file, a foreign tar and a missing file, saying why', async () => {
    const file = await written();
    const bytes = await readFile(file);
    const flipped = Buffer.from(bytes);
    const at = flipped.indexOf('REDIS0010') + 2000;
    flipped[at] = flipped[at]! ^ 1;
    await writeFile(file, flipped);
    expect((await refusal(file)).message).toMatch(/SHA-256 of dump\.rdb does not match/);
    await writeFile(file, bytes.subarray(0, bytes.length - 2048));
    expect((await refusal(file)).code).toBe('BACKUP_FILE_INVALID');
    await pack(file, [{ name: 'notes.txt', data: 'hello' }]);
    expect((await refusal(file)).message).toMatch(/first entry is "notes.txt", not manifest.json/);
    await pack(file, [{ name: 'manifest.json', data: JSON.stringify({ ...build({ size: 5, sha256: 'a'.repeat(64) }), formatVersion: 9 }) }, { name: 'dump.rdb', data: 'REDIS' }]);
    expect((await refusal(file)).message).toMatch(/manifest\.json: formatVersion/);
    await writeFile(file, 'not a tar at all, just text that is long enough to be read as a header'.repeat(10));
    expect((await refusal(file)).code).toBe('BACKUP_FILE_INVALID');
    expect((await refusal(path.join(dir, 'nope.tar'))).code).toBe('BACKUP_FILE_MISSING');
  });

  it('refuses extra entries after the payload', async () => {
    const file = await written();
    const entries: { name: string; data: Buffer }[] = [];
    const extract = tar.extract();
    extract.on('entry', (h, s, next) => { const c: Buffer[] = []; s.on('data', (d: Buffer) => c.push(d)); s.on('end', () => { entries.push({ name: h.name, data: Buffer.concat(c) }); next(); }); });
    const done = new Promise((resolve) => extract.on('finish', resolve));
    extract.end(await readFile(file));
    await done;
    await pack(file, [...entries, { name: 'extra', data: Buffer.from('x') }]);
    expect((await refusal(file)).message).toMatch(/unexpected entry "extra"/);
  });
});

describe('the backups folder', () => {
  it('is .depl/backups/ beside depl.yaml, 0700 like .depl/ (tightened when it was wider), and git-ignored', async () => {
    await mkdir(path.join(dir, '.depl', 'backups'), { recursive: true, mode: 0o755 });
    await chmod(path.join(dir, '.depl'), 0o755);
    await chmod(path.join(dir, '.depl', 'backups'), 0o755);
    const backups = await ensureBackupsDir(dir);
    expect(backups).toBe(path.join(dir, '.depl', 'backups'));
    expect((await stat(path.join(dir, '.depl'))).mode & 0o777).toBe(0o700);
    expect((await stat(backups)).mode & 0o777).toBe(0o700);
    expect(await readFile(path.join(dir, '.depl', '.gitignore'), 'utf8')).toContain('*');
    const file = path.join(backups, 'b.tar');
    await writeBackupFile(file, 'dump.rdb', Readable.from([rdb]), build);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});
