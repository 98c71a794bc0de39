import type { CommandContext, CommandOutcome } from '../context.js';
import { requireConfig } from '../require-config.js';
import { clusterAccessFor } from '../../workflows/command-inputs.js';
import { execInService } from '../../workflows/exec.js';

/**
 * With stdin a TTY: a TTY in the container, the terminal in raw mode while it is attached (Ctrl-C goes to the
 * command) and resized with it; otherwise plain pipes. The command's exit code becomes depl's (main.ts maps it).
 */
export default async function command(ctx: CommandContext, service: string, commandLine: string[], opts: { version?: string }): Promise<CommandOutcome> {
  const loaded = await requireConfig(ctx);
  const stdin = process.stdin;
  const tty = Boolean(stdin.isTTY) && Boolean(process.stdout.isTTY);
  try {
    const result = await execInService(clusterAccessFor(loaded), { service, version: opts.version, command: commandLine, tty, term: process.env.TERM }, ctx.log, {
      stdin,
      rawMode: tty ? stdin : undefined,
      stdout: process.stdout,
      stderr: process.stderr,
      size: () => ({ columns: process.stdout.columns ?? 0, rows: process.stdout.rows ?? 0 }),
      onResize: (listener) => {
        process.stdout.on('resize', listener);
        return () => process.stdout.off('resize', listener);
      },
    });
    ctx.log.debug(`exec in task ${result.task} on ${result.node} exited with ${result.exitCode}`);
    return { exitCode: result.exitCode };
  } finally {
    stdin.pause();
  }
}
