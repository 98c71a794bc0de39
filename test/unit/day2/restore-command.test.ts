import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBackupFile } from '../../../src/apply/backup-file.js';
import backupCommand from '../../../src/cli/commands/backup.js';
import restoreCommand from '../../../src/cli/commands/restore.js';
import type { CommandContext } from '../../../src/cli/context.js';
import { UserError } from '../../../src/errors.js';
import type { BackupManifest } from '../../../src/plan/backup.js';
import { silentLogger } from '../../../src/util/log.js';

/**
 * depl backup / restore refuse bad input before the cluster is reached (exit 2, nothing changed): an unknown
 * accessory, an output that exists, a damaged or cut file, a file of another kind of accessory, and a restore
 * nobody confirmed. depl.yaml names no reachable cluster here, so any of these that got as far as the
 * cluster would fail otherwise.
 */
let dir: string;
let ctx: CommandContext;
let file: string;

const manifest = (size: number, sha256: string): BackupManifest => ({
  format: 'depl-backup', formatVersion: 1, app: 'shop', accessory: 'redis', type: 'redis', image: 'redis:7', createdAt: '2026-12-01T00:00:00.000Z',
  createdBy: 'ops@laptop', node: 'node-1', volume: { name: 'redis-data', target: '/data' }, payload: { kind: 'redis-rdb', file: 'dump.rdb', size, sha256 },
  redis: { version: '7.2.4', keys: 1, aof: true, rdbVersion: 11 },
});

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'depl-restore-cli-'));
  await writeFile(path.join(dir, 'depl.yaml'), JSON.stringify({
    app: 'shop', domain: 'shop.localhost', services: { web: { image: 'web' } }, accessories: { redis: { image: 'redis:7', volume: 'redis-data:/data' } },
  }));
  ctx = { globals: { config: path.join(dir, 'depl.yaml') }, log: silentLogger, interactive: false, progress: false, result: () => {} };
  file = path.join(dir, 'redis.tar');
  await writeBackupFile(file, 'dump.rdb', Readable.from([Buffer.from('REDIS0011{"k":"v"}')]), (facts) => manifest(facts.size, facts.sha256));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const refusal = (run: Promise<void>) => run.then(() => null, (error: unknown) => error);

describe('depl backup and restore refuse bad input before reaching the cluster', () => {
  it('backup: an unknown accessory, an output that exists', async () => {
    expect(await refusal(backupCommand(ctx, 'nope', {}))).toMatchObject({ code: 'NO_SUCH_ACCESSORY' });
    const exists = await refusal(backupCommand(ctx, 'redis', { output: file }));
    expect(exists).toBeInstanceOf(UserError);
    expect(exists).toMatchObject({ code: 'BACKUP_OUTPUT_EXISTS', message: `${file} already exists` });
  });

  it('restore: a changed byte, a cut file, a file of another type; without --yes and a terminal it asks instead of acting', async () => {
    const bytes = await readFile(file);
    const damaged = path.join(dir, 'damaged.tar');
    const at = bytes.indexOf('REDIS0011');
    await writeFile(damaged, Buffer.concat([bytes.subarray(0, at + 12), Buffer.from([bytes[at + 12]! ^ 0xff]), bytes.subarray(at + 13)]));
    expect(await refusal(restoreCommand(ctx, 'redis', damaged, { force: true }))).toMatchObject({ code: 'BACKUP_FILE_INVALID', message: expect.stringMatching(/SHA-256/) });
    const cut = path.join(dir, 'cut.tar');
    await writeFile(cut, bytes.subarray(0, bytes.length - 1536));
    expect(await refusal(restoreCommand(ctx, 'redis', cut, { force: true }))).toMatchObject({ code: 'BACKUP_FILE_INVALID' });
    const postgres = path.join(dir, 'postgres.tar');
    await writeBackupFile(postgres, 'dump.rdb', Readable.from([Buffer.from('REDIS0011{}')]), (facts) => ({ ...manifest(facts.size, facts.sha256), type: 'postgres', accessory: 'db', image: 'postgres:16' }));
    expect(await refusal(restoreCommand(ctx, 'redis', postgres, { force: true }))).toMatchObject({ code: 'BACKUP_WRONG_TYPE', message: expect.stringMatching(/postgres accessory's data/) });
    const unconfirmed = await refusal(restoreCommand(ctx, 'redis', file, { force: true }));
    expect(unconfirmed).toMatchObject({ code: 'CONFIRMATION_NEEDED', hint: 'Nothing was changed. Pass --yes to confirm.' });
  });
});
