import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { planVolumeMoves, repointedSpec, volumeCopyScript, type VolumeMoveFacts, type VolumeMoveRecord, type VolumeUserService } from '../../../src/plan/volume-move.js';

/** The move of volumes made under depl.yaml's names alone into their app-scoped names, as data. */
const yaml = `
app: notes
domain: notes.test
services:
  web: { image: gitea/gitea:1, port: 3000, http: true, health: /, volume: "files:/data" }
accessories:
  db: { image: postgres:16, node: manager, port: 5432, volume: "pg-data:/var/lib/postgresql/data" }
`;
const config = parseConfig(yaml);
const web = (version: string, replicas: number, volume = 'files'): VolumeUserService => ({
  name: `notes-${version}-web`, labels: { 'depl.app': 'notes', 'depl.version': version, 'depl.volume': volume }, replicas, image: 'gitea/gitea:1', volumes: [volume],
});
const db = (volume = 'pg-data', replicas = 1): VolumeUserService => ({ name: 'notes-db', labels: { 'depl.app': 'notes', 'depl.accessory': 'db' }, replicas, image: 'postgres:16', volumes: [volume] });
const facts = (over: Partial<VolumeMoveFacts> = {}): VolumeMoveFacts => ({
  config, present: [web('v1', 1), web('v0', 0), db()], others: [], record: null,
  locations: { files: { nodes: ['node-2'], unreachable: [] }, 'pg-data': { nodes: ['node-1'], unreachable: [] } },
  by: 'ops@laptop', at: '2026-12-07T12:00:00.000Z', ...over,
});
const plan = (f: VolumeMoveFacts) => {
  const planned = planVolumeMoves(f, 'depl buildinst --version v2');
  if (!planned.ok) throw new Error(planned.refusal.message);
  return planned.plan;
};
const kinds = (f: VolumeMoveFacts) => plan(f).steps.map((s) => `${s.kind}${'volume' in s ? ` ${s.volume}` : ''}`);

describe('moving a volume into its app-scoped name', () => {
  it('nothing to do when no service of the app mounts an unscoped name (another app\'s does not count)', () => {
    expect(plan(facts({ present: [web('v1', 1, 'notes-files'), db('notes-pg-data')] })).steps).toEqual([]);
    const otherApp = { ...db(), labels: { 'depl.app': 'blog', 'depl.accessory': 'db' } };
    expect(plan(facts({ present: [otherApp] })).steps).toEqual([]);
  });

  it('records, stops the users, waits, copies on the node, points them at the new volume, starts the running ones, removes the old one, forgets the record', () => {
    const planned = plan(facts());
    expect(kinds(facts())).toEqual([
      'record-moves',
      'stop-users files', 'await-free files', 'copy-volume files', 'repoint-users files', 'start-users files', 'remove-old-volume files',
      'stop-users pg-data', 'await-free pg-data', 'copy-volume pg-data', 'repoint-users pg-data', 'start-users pg-data', 'remove-old-volume pg-data',
      'clear-record',
    ]);
    const record = planned.steps[0] as Extract<typeof planned.steps[number], { kind: 'record-moves' }>;
    expect(record.record.moves).toEqual([
      { volume: 'files', from: 'files', to: 'notes-files', node: 'node-2', image: 'gitea/gitea:1', users: [{ name: 'notes-v0-web', replicas: 0 }, { name: 'notes-v1-web', replicas: 1 }] },
      { volume: 'pg-data', from: 'pg-data', to: 'notes-pg-data', node: 'node-1', image: 'postgres:16', users: [{ name: 'notes-db', replicas: 1 }] },
    ]);
    // a stopped version is pointed at the new volume too (a rollback to it finds the data), and stays stopped
    expect(planned.steps.find((s) => s.kind === 'repoint-users' && s.volume === 'files')).toMatchObject({ services: ['notes-v0-web', 'notes-v1-web'], from: 'files', to: 'notes-files' });
    expect(planned.steps.find((s) => s.kind === 'start-users' && s.volume === 'files')).toMatchObject({ targets: [{ service: 'notes-v1-web', replicas: 1 }] });
    // the copy: a job pinned to the node with the volume, both volumes mounted (the old read-only), no network, as root
    const copy = planned.steps.find((s) => s.kind === 'copy-volume' && s.volume === 'pg-data') as Extract<typeof planned.steps[number], { kind: 'copy-volume' }>;
    expect(copy.job).toMatchObject({
      Labels: { 'depl.app': 'notes', 'depl.job': 'volume', 'depl.volume-move.from': 'pg-data', 'depl.volume-move.to': 'notes-pg-data' },
      TaskTemplate: {
        ContainerSpec: { Image: 'postgres:16', User: '0', Mounts: [{ Type: 'volume', Source: 'pg-data', Target: '/depl-volume/from', ReadOnly: true }, { Type: 'volume', Source: 'notes-pg-data', Target: '/depl-volume/to' }] },
        Networks: [], Placement: { Constraints: ['node.hostname==node-1'] }, RestartPolicy: { Condition: 'none' },
      },
      Mode: { ReplicatedJob: { TotalCompletions: 1 } },
    });
    expect(copy.job.Name).toMatch(/^notes-volume-move-[0-9a-f]{6}$/);
    // a first move finds the new volume empty, or leaves it alone
    expect(copy.job.TaskTemplate.ContainerSpec.Args[1]).toContain('not overwritten');
    // what can be undone before the services are pointed at the new volume, and what cannot after
    expect(planned.steps.filter((s) => 'undo' in s).map((s) => s.kind)).toEqual(['record-moves', 'stop-users', 'copy-volume', 'stop-users', 'copy-volume']);
  });

  it('finishes a recorded move: copied again while the services still mount the old volume, else only what is left after pointing them', () => {
    const first = plan(facts());
    const record = (first.steps[0] as { record: VolumeMoveRecord }).record;
    // killed before pointing anything: the recorded replicas are what is started, whatever the services run now
    const stopped = facts({ record, present: [web('v1', 0), web('v0', 0), db('pg-data', 0)] });
    expect(kinds(stopped)).toEqual([
      'stop-users files', 'await-free files', 'copy-volume files', 'repoint-users files', 'start-users files', 'remove-old-volume files',
      'stop-users pg-data', 'await-free pg-data', 'copy-volume pg-data', 'repoint-users pg-data', 'start-users pg-data', 'remove-old-volume pg-data', 'clear-record',
    ]);
    expect(plan(stopped).steps.find((s) => s.kind === 'start-users' && s.volume === 'pg-data')).toMatchObject({ targets: [{ service: 'notes-db', replicas: 1 }] });
    // the new volume then holds this move's partial copy: emptied, not refused
    const again = plan(stopped).steps.find((s) => s.kind === 'copy-volume') as { job: { TaskTemplate: { ContainerSpec: { Args: string[] } } } };
    expect(again.job.TaskTemplate.ContainerSpec.Args[1]).not.toContain('not overwritten');
    // files pointed, pg-data not yet
    const half = facts({ record, present: [web('v1', 0, 'notes-files'), web('v0', 0, 'notes-files'), db('pg-data', 0)] });
    expect(kinds(half)).toEqual([
      'start-users files', 'remove-old-volume files',
      'stop-users pg-data', 'await-free pg-data', 'copy-volume pg-data', 'repoint-users pg-data', 'start-users pg-data', 'remove-old-volume pg-data', 'clear-record',
    ]);
    // all pointed and started: the old volumes' removal (already gone is fine) and the record
    const done = facts({ record, present: [web('v1', 1, 'notes-files'), web('v0', 0, 'notes-files'), db('notes-pg-data', 1)] });
    expect(kinds(done)).toEqual(['start-users files', 'remove-old-volume files', 'start-users pg-data', 'remove-old-volume pg-data', 'clear-record']);
    // the services are gone (removed meanwhile): nothing shows the copy was verified, so the old volumes stay
    const gone = facts({ record, present: [] });
    expect(kinds(gone)).toEqual(['clear-record']);
    expect(plan(gone).notes).toContain('volume pg-data is kept on node-1: none of the services that mounted it is left, so nothing shows its copy notes-pg-data was verified');
    expect(plan(done).notes[0]).toMatch(/an interrupted move of volumes files, pg-data \(by ops@laptop at 2026-12-07T12:00:00.000Z\) is finished first/);
  });

  it('refuses, changing nothing, when the volume cannot be reached, is on several nodes, or another app runs on it', () => {
    const refused = (f: VolumeMoveFacts) => {
      const planned = planVolumeMoves(f, 'depl buildinst');
      if (planned.ok) throw new Error('not refused');
      return planned.refusal;
    };
    expect(refused(facts({ locations: { files: { nodes: [], unreachable: ['node-2'] }, 'pg-data': { nodes: ['node-1'], unreachable: ['node-2'] } } }))).toMatchObject({
      code: 'VOLUME_UNREACHABLE', message: 'volume files must be moved into its app-scoped name, but node node-2 could not be reached to find it', hint: expect.stringContaining('nothing was changed'),
    });
    expect(refused(facts({ locations: { files: { nodes: ['node-1', 'node-2'], unreachable: [] } } }))).toMatchObject({ code: 'VOLUME_ON_SEVERAL_NODES', message: expect.stringContaining('node-1, node-2') });
    const blogDb: VolumeUserService = { name: 'blog-db', labels: { 'depl.app': 'blog', 'depl.accessory': 'db' }, replicas: 1, image: 'postgres:16', volumes: ['pg-data'] };
    expect(refused(facts({ others: [blogDb] }))).toMatchObject({ code: 'VOLUME_SHARED', message: expect.stringContaining('blog-db (app blog) also runs on it') });
  });

  it('keeps the old volume, and says why, while another app\'s stopped service still mounts it; copies nothing of a volume no node has', () => {
    const blogDb: VolumeUserService = { name: 'blog-db', labels: { 'depl.app': 'blog', 'depl.accessory': 'db' }, replicas: 0, image: 'postgres:16', volumes: ['pg-data'] };
    const kept = plan(facts({ others: [blogDb] }));
    expect(kept.steps.filter((s) => s.kind === 'remove-old-volume').map((s) => (s as { from: string }).from)).toEqual(['files']);
    expect(kept.notes).toContain('volume pg-data is kept on node-1: blog-db (app blog) still mounts it; that app moves its own copy at its next buildinst');
    const never = facts({ locations: { files: { nodes: [], unreachable: [] }, 'pg-data': { nodes: ['node-1'], unreachable: [] } } });
    expect(kinds(never).slice(1, 4)).toEqual(['stop-users files', 'repoint-users files', 'start-users files']);
    expect(plan(never).notes).toContain('volume files is on no node (its services never ran): nothing to copy');
  });

  it('points a spec\'s mounts and its depl.volume label at the new volume, and nothing else', () => {
    const spec = {
      Name: 'notes-v1-web', Labels: { 'depl.app': 'notes', 'depl.volume': 'files' }, Mode: { Replicated: { Replicas: 0 } },
      TaskTemplate: { ContainerSpec: { Image: 'x', Mounts: [{ Type: 'volume', Source: 'files', Target: '/data' }, { Type: 'bind', Source: 'files', Target: '/b' }, { Type: 'volume', Source: 'other', Target: '/o' }] }, Placement: { Constraints: ['node.hostname==node-2'] } },
    };
    expect(repointedSpec(spec, 'files', 'notes-files')).toEqual({
      ...spec, Labels: { 'depl.app': 'notes', 'depl.volume': 'notes-files' },
      TaskTemplate: { ...spec.TaskTemplate, ContainerSpec: { Image: 'x', Mounts: [{ Type: 'volume', Source: 'notes-files', Target: '/data' }, { Type: 'bind', Source: 'files', Target: '/b' }, { Type: 'volume', Source: 'other', Target: '/o' }] } },
    });
  });
});

describe("the copy job's script, run by sh on two folders", () => {
  const run = promisify(execFile);
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });
  /** The script with its mount points put under a temporary folder. */
  const script = (requireEmpty: boolean, from: string, to: string) => volumeCopyScript(requireEmpty).replaceAll('/depl-volume/from', from).replaceAll('/depl-volume/to', to);
  const outcome = (text: string) => run('sh', ['-c', text]).then((r) => ({ code: 0, out: r.stdout, err: r.stderr }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }));

  it('copies files, folders, links and modes, verifies them, and empties a partial copy first', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'depl-volume-'));
    const from = path.join(dir, 'from');
    const to = path.join(dir, 'to');
    await mkdir(path.join(from, 'base', '16384'), { recursive: true });
    await mkdir(to);
    // a database's data folder: 0700 (the new volume's folder is 0755 as Docker makes it)
    await chmod(from, 0o700);
    await writeFile(path.join(from, 'base', '16384', 'PG_VERSION'), '16\n');
    await writeFile(path.join(from, 'secret.key'), 'k');
    await chmod(path.join(from, 'secret.key'), 0o600);
    await run('ln', ['-s', 'base/16384', path.join(from, 'current')]);
    expect(await outcome(script(true, from, to))).toMatchObject({ code: 0, out: 'copied and verified: 6 entries\n' });
    expect((await run('ls', ['-lR', to])).stdout.replaceAll(to, '')).toBe((await run('ls', ['-lR', from])).stdout.replaceAll(from, ''));
    // a first move refuses a new volume with files in it; a recorded one empties it (a killed copy's leftovers) and copies again
    await writeFile(path.join(to, 'leftover'), 'x');
    expect(await outcome(script(true, from, to))).toMatchObject({ code: 3, err: expect.stringContaining('not overwritten') });
    expect(await outcome(script(false, from, to))).toMatchObject({ code: 0 });
    expect((await run('ls', [to])).stdout.split('\n')).not.toContain('leftover');
  });

  it("gives the new volume's folder the old one's mode, also where cp leaves it as it found it (busybox)", async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'depl-volume-'));
    const from = path.join(dir, 'from');
    const to = path.join(dir, 'to');
    const bin = path.join(dir, 'bin');
    await mkdir(from, { mode: 0o700 });
    await mkdir(to, { mode: 0o755 });
    await mkdir(bin);
    await writeFile(path.join(from, 'PG_VERSION'), '16');
    await writeFile(path.join(bin, 'cp'), `#!/bin/sh\n/bin/cp "$@" && chmod 755 ${to}\n`);
    await chmod(path.join(bin, 'cp'), 0o755);
    expect(await outcome(`PATH=${bin}:$PATH\n${script(true, from, to)}`)).toMatchObject({ code: 0 });
    expect((await run('stat', ['-c', '%a', to])).stdout.trim()).toBe('700');
  });

  it('fails with exit 4, naming the difference, when the copy is not the volume (a cp that loses a byte)', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'depl-volume-'));
    const from = path.join(dir, 'from');
    const to = path.join(dir, 'to');
    const bin = path.join(dir, 'bin');
    await mkdir(from);
    await mkdir(to);
    await mkdir(bin);
    await writeFile(path.join(from, 'data'), 'abc');
    await writeFile(path.join(bin, 'cp'), `#!/bin/sh\n/bin/cp "$@" && printf ab > ${to}/data\n`);
    await chmod(path.join(bin, 'cp'), 0o755);
    const failed = await outcome(`PATH=${bin}:$PATH\n${script(true, from, to)}`);
    expect(failed).toMatchObject({ code: 4, err: expect.stringContaining('the copy differs from the volume') });
    expect(failed.err).toMatch(/\.\/data 3 /);
  });
});
