import { spawn } from 'node:child_process';
import { mkdir, open, readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { OperationError } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { ensureDebianPackages } from './packages.js';
import { pollUntil } from '../../util/poll.js';

export interface DockerEngine {
  /** The engine's socket: pass to dockerode as socketPath, or to the docker CLI as DOCKER_HOST. */
  socketPath: string;
  /** True when this process started dockerd (and so should stop it). */
  startedHere: boolean;
  pid?: number;
  stop(): Promise<void>;
}

const DEFAULT_SOCKET = '/var/run/docker.sock';
const PIDFILE = '/var/run/depl-dockerd.pid';
const LOGFILE = '/var/log/depl-dockerd.log';

async function answers(socketPath: string): Promise<boolean> {
  const result = await execa('docker', ['-H', `unix://${socketPath}`, 'info', '--format', '{{.ServerVersion}}'], { reject: false, timeout: 15_000 });
  return result.exitCode === 0;
}

/**
 * Makes a Docker Engine available on this machine: the running one if `docker info` answers, otherwise
 * Debian's docker.io, installed if missing and started as a plain background dockerd (these machines
 * have no systemd). Whoever gets `startedHere: true` decides whether to stop it.
 */
export async function ensureDockerEngine(log: Logger, options: { socketPath?: string } = {}): Promise<DockerEngine> {
  const socketPath = options.socketPath ?? DEFAULT_SOCKET;
  const hasCli = await execa('sh', ['-c', 'command -v docker'], { reject: false });
  if (hasCli.exitCode === 0 && (await answers(socketPath))) {
    return { socketPath, startedHere: false, stop: async () => {} };
  }
  await ensureDebianPackages(['docker.io', 'iptables'], log);

  const stale = await readFile(PIDFILE, 'utf8').catch(() => '');
  if (stale.trim() && isAlive(Number(stale.trim()))) {
    log.step(`waiting for the Docker Engine already starting (pid ${stale.trim()})`);
  } else {
    log.step('starting the Docker Engine (dockerd) in the background');
    await mkdir('/var/log', { recursive: true });
    const out = await open(LOGFILE, 'a');
    const child = spawn('dockerd', ['-H', `unix://${socketPath}`, '--pidfile', PIDFILE], {
      detached: true,
      stdio: ['ignore', out.fd, out.fd],
    });
    child.unref();
    await out.close();
  }
  return pollUntil(async () => {
    if (!(await answers(socketPath))) return undefined;
    const pid = Number((await readFile(PIDFILE, 'utf8').catch(() => '0')).trim()) || undefined;
    return { socketPath, startedHere: true, pid, stop: () => stopDockerd(pid) };
  }, {
    timeoutMs: 60_000,
    intervalMs: 500,
    onTimeout: async () => {
      const tail = (await readFile(LOGFILE, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
      throw new OperationError(`dockerd did not answer within 60 s. Last lines of ${LOGFILE}:\n${tail}`, 'Start Docker yourself (dockerd &) and try again.', 'DOCKER_START_FAILED');
    },
  });
}

/** Whether a process with this id runs (signal 0 asks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopDockerd(pid: number | undefined): Promise<void> {
  if (!pid || !isAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const stopped = await pollUntil(async () => (isAlive(pid) ? undefined : true), { timeoutMs: 30_000, intervalMs: 200, onTimeout: () => false });
  if (!stopped) process.kill(pid, 'SIGKILL');
}
