import type { Duplex } from 'node:stream';
import { OperationError } from '../errors.js';
import type { planExec } from '../plan/jobs.js';
import { pollUntil } from '../util/poll.js';
import type { Engine } from './docker.js';
import { enterRawMode, type RawModeInput } from './terminal.js';

/** The operator's terminal or pipes, as `depl exec` connects them to the command. */
export interface ExecIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** With a TTY: the terminal's size now, and a way to hear when it changes (returns the unsubscribe). */
  size?: () => { columns: number; rows: number };
  onResize?: (listener: () => void) => () => void;
  /** With a TTY: the operator's terminal, in raw mode while the command's TTY is attached. */
  rawMode?: RawModeInput;
}

function apiMessage(error: unknown): string {
  return ((error as { json?: { message?: string } }).json?.message ?? (error as Error).message ?? String(error)).trim();
}

/**
 * Runs a command in a running container through its node's Engine API (exec create + a hijacked start), as
 * `docker exec -i[t]` does: stdin is streamed in and closed on its end, output streamed out (one stream with a
 * TTY, stdout and stderr apart without), the TTY resized with the terminal. Returns the command's exit code.
 */
export async function execInContainer(engine: Engine, containerId: string, request: ReturnType<typeof planExec>, io: ExecIo): Promise<number> {
  const container = engine.docker.getContainer(containerId);
  let exec: Awaited<ReturnType<typeof container.exec>>;
  let stream: Duplex;
  try {
    exec = await container.exec(request);
    stream = await exec.start({ hijack: true, stdin: true, Tty: request.Tty }) as Duplex;
  } catch (error) {
    throw new OperationError(`${engine.name}: cannot exec in container ${containerId.slice(0, 12)}: ${apiMessage(error)}`, 'The task may have just stopped: run the command again.', 'EXEC_FAILED', { cause: error });
  }
  // the engine refuses a resize until the exec's process runs, which may be a moment after the start returns
  const resize = async (attempts = 1) => {
    const size = io.size?.();
    if (size === undefined || size.columns <= 0 || size.rows <= 0) return;
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      if (await exec.resize({ h: size.rows, w: size.columns }).then(() => true, () => false)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const unsubscribe = request.Tty && io.onResize ? io.onResize(() => void resize()) : () => {};
  if (request.Tty) void resize(20);
  const ended = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', () => resolve());
  });
  if (request.Tty) stream.pipe(io.stdout, { end: false });
  else engine.docker.modem.demuxStream(stream, io.stdout, io.stderr);
  const restoreTerminal = request.Tty && io.rawMode !== undefined ? enterRawMode(io.rawMode) : () => {};
  // stdin's end half-closes the connection: the engine closes the command's stdin and keeps sending its output
  io.stdin.pipe(stream);
  try {
    await ended;
  } finally {
    io.stdin.unpipe(stream);
    unsubscribe();
    // as soon as the output ends (the command exited, or the connection dropped), before the wait for the exit code
    restoreTerminal();
  }
  // the exec's exit code is recorded a moment after its output ends
  return pollUntil(async () => {
    const state = await exec.inspect().catch((error) => {
      throw new OperationError(`${engine.name}: cannot read the exit code of the exec: ${apiMessage(error)}`, undefined, 'EXEC_FAILED', { cause: error });
    }) as { Running?: boolean; ExitCode?: number | null };
    return state.Running === false && typeof state.ExitCode === 'number' ? state.ExitCode : undefined;
  }, {
    timeoutMs: 15_000,
    intervalMs: 100,
    onTimeout: () => { throw new OperationError(`${engine.name}: the command's output ended but the engine reported no exit code`, undefined, 'EXEC_FAILED'); },
  });
}
