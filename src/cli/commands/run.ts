import type { CommandContext, CommandOutcome } from '../context.js';
import { requireConfig } from '../require-config.js';
import { clusterAccessFor } from '../../workflows/command-inputs.js';
import { runJob } from '../../workflows/run.js';

/** The job's stdout and stderr go to depl's as they come; its exit code becomes depl's (main.ts maps it). */
export default async function command(ctx: CommandContext, service: string, commandLine: string[], opts: { version?: string; entrypoint?: string; timeout?: string }): Promise<CommandOutcome> {
  const loaded = await requireConfig(ctx);
  const result = await runJob(clusterAccessFor(loaded), { service, version: opts.version, command: commandLine, entrypoint: opts.entrypoint, timeout: opts.timeout }, ctx.log, { stdout: process.stdout, stderr: process.stderr });
  ctx.log.debug(`job ${result.job} (version ${result.version}) exited with ${result.exitCode}`);
  return { exitCode: result.exitCode };
}
