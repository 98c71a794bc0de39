import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { isDeplError } from '../../../src/errors.js';
import {
  checkJobTarget, DEFAULT_JOB_TIMEOUT, JOB_START_TIMEOUT_MS, jobName, jobProgress, jobRow, jobTimeoutMs, jobWait, leftoverJobs, pickExecTask, planExec, planRunJob,
  splitFrames, unprintedFrames,
  type InspectedServiceSpec, type JobListing,
} from '../../../src/plan/jobs.js';
import { CONFIG_PATH, planSecrets, planVersionServices } from '../../../src/plan/services.js';
import { Secret } from '../../../src/util/secret.js';

const config = parseConfig(`
app: crawler
domain: crawler.localhost
secrets: [api_token]
services:
  api: { image: api:1, port: 8000, http: true, health: /healthz, command: [node, server.js], env: { LOG_LEVEL: debug }, secrets: [api_token] }
config:
  redis: "redis://redis:6379"
`);
const [secretDoc] = planSecrets('crawler', [{ name: 'api_token', value: new Secret('t'.repeat(43)) }]);
const [api] = planVersionServices({
  config, version: 'v7', images: { api: 'crawler-api:v7' }, network: 'crawler-net', nodes: 3,
  configRef: { id: 'cfg1', name: 'crawler-config-abc' },
  secrets: { api_token: { id: 'sec1', name: secretDoc!.name } },
});
const base = { app: 'crawler', version: 'v7', service: 'api', id: 'a1b2c3', by: 'ann@laptop', startedAt: '2026-11-30T03:00:00.000Z' };

describe('depl run: the job spec, from the version service spec', () => {
  const job = planRunJob({ ...base, spec: api as unknown as InspectedServiceSpec, command: ['node', '-e', 'process.exit(3)'] });

  it('keeps the image, env, config, secrets and network exactly as the version service has them', () => {
    const container = job.TaskTemplate.ContainerSpec;
    expect(container.Image).toBe('crawler-api:v7');
    expect(container.Env).toEqual(api!.TaskTemplate.ContainerSpec.Env);
    expect(container.Env).toContain('LOG_LEVEL=debug');
    expect(container.Env).toContain(`DEPL_CONFIG_FILE=${CONFIG_PATH}`);
    expect(container.Configs).toEqual(api!.TaskTemplate.ContainerSpec.Configs);
    expect(container.Configs).toEqual([expect.objectContaining({ File: expect.objectContaining({ Name: CONFIG_PATH }), ConfigID: 'cfg1' })]);
    expect(container.Secrets).toEqual(api!.TaskTemplate.ContainerSpec.Secrets);
    expect(container.StopGracePeriod).toBe(api!.TaskTemplate.ContainerSpec.StopGracePeriod);
    expect(job.TaskTemplate.Networks).toEqual([{ Target: 'crawler-net' }]);
  });

  it('runs the command once, never restarted, as a replicated job with its own name and labels', () => {
    expect(job.Name).toBe('crawler-run-api-a1b2c3');
    expect(job.TaskTemplate.ContainerSpec.Args).toEqual(['node', '-e', 'process.exit(3)']);
    expect(job.TaskTemplate.ContainerSpec).not.toHaveProperty('Command');
    expect(job.Mode).toEqual({ ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } });
    expect(job.TaskTemplate.RestartPolicy.Condition).toBe('none');
    expect(job).not.toHaveProperty('UpdateConfig');
    const labels = { 'depl.app': 'crawler', 'depl.job': 'run', 'depl.job.service': 'api', 'depl.job.version': 'v7', 'depl.job.by': 'ann@laptop', 'depl.job.started': '2026-11-30T03:00:00.000Z' };
    expect(job.Labels).toEqual(labels);
    expect(job.TaskTemplate.ContainerSpec.Labels).toEqual(labels);
    // not a version's service: versions, logs and the edge (which read depl.version / depl.http) never see it
    expect(job.Labels).not.toHaveProperty('depl.version');
    expect(job.Labels).not.toHaveProperty('depl.http');
  });

  it('drops what makes the service a server: its health check, network aliases, max replicas per node', () => {
    const spec: InspectedServiceSpec = {
      Name: 'crawler-v7-api',
      TaskTemplate: {
        ContainerSpec: { Image: 'img@sha256:abc', Command: ['/entry'], Args: ['serve'], User: 'nobody', Dir: '/app', Mounts: [{ Type: 'volume', Source: 'data', Target: '/data' }], HealthCheck: { Test: ['CMD', 'true'] }, Labels: { x: 'y' } },
        Networks: [{ Target: 'netid', Aliases: ['api'] }],
        Placement: { Constraints: ['node.labels.depl.node==node-2'], MaxReplicas: 1 },
        Resources: { Limits: { MemoryBytes: 1e8 } },
        LogDriver: { Name: 'json-file' },
      },
    };
    const planned = planRunJob({ ...base, spec, command: ['sh'] });
    expect(planned.TaskTemplate.ContainerSpec).toEqual({
      Image: 'img@sha256:abc', Command: ['/entry'], Args: ['sh'], User: 'nobody', Dir: '/app',
      Mounts: [{ Type: 'volume', Source: 'data', Target: '/data' }], Labels: planned.Labels,
    });
    expect(planned.TaskTemplate.Networks).toEqual([{ Target: 'netid' }]);
    expect(planned.TaskTemplate.Placement).toEqual({ Constraints: ['node.labels.depl.node==node-2'] });
    expect(planned.TaskTemplate.Resources).toEqual({ Limits: { MemoryBytes: 1e8 } });
    expect(planned.TaskTemplate.LogDriver).toEqual({ Name: 'json-file' });
  });

  it('refuses an empty command, and names that are not labels, as usage errors (exit 2)', () => {
    const empty = (() => { try { planRunJob({ ...base, spec: api as unknown as InspectedServiceSpec, command: [] }); } catch (e) { return e; } })();
    expect(isDeplError(empty) && empty.exitCode).toBe(2);
    expect(() => checkJobTarget('Api', undefined)).toThrow(/service "Api" has upper-case letters/);
    expect(() => checkJobTarget('api', 'v1;rm')).toThrow(/version "v1;rm" may contain only/);
    expect(() => checkJobTarget('api', 'v1')).not.toThrow();
    expect(jobName('a'.repeat(20), 's'.repeat(20), 'ffffff').length).toBeLessThanOrEqual(63);
  });
});

describe('depl run --entrypoint and --timeout', () => {
  // an image whose ENTRYPOINT is the server: without --entrypoint, a job's command would be the server's arguments
  const server: InspectedServiceSpec = { Name: 'shop-v2-web', TaskTemplate: { ContainerSpec: { Image: 'shop/web:v2', Env: ['DEPL_CONFIG_FILE=/run/depl/config.json'] } } };

  it("replaces the image's ENTRYPOINT with the program, the command after -- becoming its arguments, as docker run --entrypoint does", () => {
    const job = planRunJob({ ...base, service: 'web', spec: server, entrypoint: 'sh', command: ['-c', 'echo hi; exit 4'] });
    expect(job.TaskTemplate.ContainerSpec).toMatchObject({ Image: 'shop/web:v2', Command: ['sh'], Args: ['-c', 'echo hi; exit 4'], Env: ['DEPL_CONFIG_FILE=/run/depl/config.json'] });
    // no arguments at all is a command too: the image's CMD is not used once its ENTRYPOINT is replaced
    expect(planRunJob({ ...base, service: 'web', spec: server, entrypoint: 'env', command: [] }).TaskTemplate.ContainerSpec).toMatchObject({ Command: ['env'], Args: [] });
    // over a Command the service spec had (an entrypoint in depl.yaml's terms), too
    const withCommand: InspectedServiceSpec = { TaskTemplate: { ContainerSpec: { Image: 'i', Command: ['/serve'], Args: ['--port', '80'] } } };
    expect(planRunJob({ ...base, spec: withCommand, entrypoint: '/bin/true', command: [] }).TaskTemplate.ContainerSpec).toMatchObject({ Command: ['/bin/true'], Args: [] });
  });

  it('without --entrypoint keeps the ENTRYPOINT and replaces only the arguments; an empty --entrypoint is a usage error', () => {
    const job = planRunJob({ ...base, service: 'web', spec: server, command: ['--migrate'] });
    expect(job.TaskTemplate.ContainerSpec).not.toHaveProperty('Command');
    expect(job.TaskTemplate.ContainerSpec.Args).toEqual(['--migrate']);
    const empty = (() => { try { planRunJob({ ...base, spec: server, entrypoint: '', command: ['x'] }); } catch (e) { return e; } })();
    expect(isDeplError(empty) && empty.exitCode).toBe(2);
  });

  it('takes a duration or none for --timeout, 1h by default; anything else is a usage error', () => {
    expect(DEFAULT_JOB_TIMEOUT).toBe('1h');
    expect(jobTimeoutMs(undefined)).toBe(3_600_000);
    expect(jobTimeoutMs('3s')).toBe(3_000);
    expect(jobTimeoutMs('none')).toBeNull();
    const bad = (() => { try { jobTimeoutMs('soon'); } catch (e) { return e; } })();
    expect(isDeplError(bad) && bad.exitCode).toBe(2);
    expect(() => jobTimeoutMs('0s')).toThrow(/--timeout "0s" must be more than zero/);
  });

  it('stops waiting when the job ends, when its timeout runs out (running or not yet started), or when no node starts it', () => {
    const running = { kind: 'running' } as const;
    const pending = { kind: 'waiting', detail: 'pending: no suitable node' } as const;
    const exited = { kind: 'exited', exitCode: 4 } as const;
    expect(jobWait(running, 2_999, 3_000)).toEqual({ kind: 'wait' });
    expect(jobWait(running, 3_000, 3_000)).toEqual({ kind: 'timed-out' });
    expect(jobWait(pending, 3_000, 3_000)).toEqual({ kind: 'timed-out' });
    // an ended job is its answer even when it is read after the timeout
    expect(jobWait(exited, 10_000, 3_000)).toEqual({ kind: 'ended', progress: exited });
    expect(jobWait(running, 86_400_000, null)).toEqual({ kind: 'wait' });
    expect(jobWait(pending, JOB_START_TIMEOUT_MS, null)).toEqual({ kind: 'wait' });
    expect(jobWait(pending, JOB_START_TIMEOUT_MS + 1, null)).toEqual({ kind: 'not-started', detail: 'pending: no suitable node' });
  });
});

describe('depl run: following the job', () => {
  it('waits while the task is scheduled, runs, then passes its exit code through', () => {
    expect(jobProgress([])).toEqual({ kind: 'waiting', detail: 'no task scheduled yet' });
    expect(jobProgress([{ state: 'pending', error: '', message: 'pending task scheduling' }])).toEqual({ kind: 'waiting', detail: 'pending: pending task scheduling' });
    expect(jobProgress([{ state: 'running', error: '', message: 'started' }])).toEqual({ kind: 'running' });
    expect(jobProgress([{ state: 'complete', error: '', message: 'finished', exitCode: 0 }])).toEqual({ kind: 'exited', exitCode: 0 });
    expect(jobProgress([{ state: 'failed', error: 'task: non-zero exit (3)', message: 'started', exitCode: 3 }])).toEqual({ kind: 'exited', exitCode: 3 });
    expect(jobProgress([{ state: 'failed', error: 'starting container failed: exec: "nope": executable file not found', message: '', exitCode: 127 }]))
      .toEqual({ kind: 'exited', exitCode: 127, note: 'starting container failed: exec: "nope": executable file not found' });
  });

  it('tells a job that never ran (rejected, shut down) from one whose command failed', () => {
    expect(jobProgress([{ state: 'rejected', error: 'secret not found: x', message: 'preparing' }])).toEqual({ kind: 'failed', reason: 'rejected: secret not found: x' });
    expect(jobProgress([{ state: 'shutdown', error: '', message: 'shutdown' }])).toEqual({ kind: 'failed', reason: 'shutdown: shutdown' });
    expect(jobProgress([{ state: 'failed', error: 'no container', message: '' }])).toEqual({ kind: 'failed', reason: 'failed: no container' });
  });

  const job = (name: string, state: string, exitCode?: number): JobListing => ({
    name,
    labels: { 'depl.job.service': 'api', 'depl.job.version': 'v7', 'depl.job.by': 'ann@laptop', 'depl.job.started': '2026-11-30T03:00:00.000Z' },
    progress: jobProgress([{ state, error: '', message: '', ...(exitCode !== undefined ? { exitCode } : {}) }]),
  });

  it('counts finished jobs as leftovers of a killed depl run, never a running or waiting one', () => {
    const jobs = [job('a', 'running'), job('b', 'complete', 0), job('c', 'failed', 2), job('d', 'pending'), job('e', 'rejected')];
    expect(leftoverJobs(jobs).map((j) => j.name)).toEqual(['b', 'c', 'e']);
    expect(jobRow(jobs[2]!)).toEqual({ name: 'c', service: 'api', version: 'v7', by: 'ann@laptop', startedAt: '2026-11-30T03:00:00.000Z', state: 'exited', exitCode: 2 });
    expect(jobRow(jobs[0]!).exitCode).toBeNull();
  });

  const frame = (stream: number, text: string) => {
    const payload = Buffer.from(text);
    const header = Buffer.alloc(8);
    header[0] = stream;
    header.writeUInt32BE(payload.length, 4);
    return Buffer.concat([header, payload]);
  };
  const text = (frames: { stream: number; payload: Uint8Array }[]) => frames.map((f) => `${f.stream}:${Buffer.from(f.payload).toString()}`);

  it("splits Docker's multiplexed frames, keeping an incomplete one for the next chunk", () => {
    const whole = Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, 'more\n')]);
    const first = splitFrames(whole.subarray(0, 20));
    expect(text(first.frames)).toEqual(['1:out\n']);
    const second = splitFrames(Buffer.concat([first.rest, whole.subarray(20)]));
    expect(text(second.frames)).toEqual(['2:err\n', '1:more\n']);
    expect(second.rest.length).toBe(0);
  });

  it('prints from the final full read only what following had not printed, per stream, in order', () => {
    const frames = splitFrames(Buffer.concat([frame(1, 'one\n'), frame(2, 'err\n'), frame(1, 'two\n'), frame(1, 'three\n')])).frames;
    expect(text(unprintedFrames(frames, { 1: 0, 2: 0 }))).toEqual(['1:one\n', '2:err\n', '1:two\n', '1:three\n']);
    expect(text(unprintedFrames(frames, { 1: 4, 2: 4 }))).toEqual(['1:two\n', '1:three\n']);
    expect(text(unprintedFrames(frames, { 1: 6, 2: 0 }))).toEqual(['2:err\n', '1:o\n', '1:three\n']);
    expect(unprintedFrames(frames, { 1: 14, 2: 4 })).toEqual([]);
  });
});

describe('depl exec: which task, and the exec request', () => {
  const task = (id: string, slot: number, state = 'running', extra: Partial<{ nodeId: string; containerId: string; desired: string }> = {}) =>
    ({ id, slot, state, desired: 'running', nodeId: 'n1', containerId: `c-${id}`, ...extra });

  it('picks the running task with the lowest slot, never one that is starting or shutting down', () => {
    expect(pickExecTask([task('b', 2), task('a', 1, 'starting'), task('c', 3)])?.id).toBe('b');
    expect(pickExecTask([task('a', 1, 'running', { desired: 'shutdown' }), task('b', 2, 'running', { containerId: '' })])).toBeNull();
    expect(pickExecTask([])).toBeNull();
  });

  it('asks for a TTY (with the terminal type) only when interactive', () => {
    expect(planExec(['sh', '-c', 'echo hi'], false, 'xterm')).toEqual({ Cmd: ['sh', '-c', 'echo hi'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false });
    expect(planExec(['sh'], true, 'xterm-256color')).toEqual({ Cmd: ['sh'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: true, Env: ['TERM=xterm-256color'] });
    expect(() => planExec([], false, undefined)).toThrow(/no command to run/);
  });
});
