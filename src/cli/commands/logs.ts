import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { clusterAccessFor } from '../../workflows/command-inputs.js';
import { formatLogLine, planLogRequest } from '../../plan/logs.js';
import { streamLogs } from '../../workflows/logs.js';

interface LogsOptions {
  version?: string;
  follow?: boolean;
  since?: string;
  tail?: number;
  grep?: string;
  raw?: boolean;
}

/**
 * Lines go to stdout as they are merged (one JSON object per line with --json), the tasks' escape sequences
 * removed unless --raw; Ctrl-C ends --follow.
 */
export default async function command(ctx: CommandContext, service: string | undefined, opts: LogsOptions): Promise<void> {
  const request = planLogRequest(opts);
  const loaded = await requireConfig(ctx);
  const format = ctx.globals.json ? 'json' : opts.raw ? 'raw' : 'text';
  await streamLogs(clusterAccessFor(loaded), { service, version: opts.version, request }, ctx.log, (line) => {
    process.stdout.write(formatLogLine(line, format) + '\n');
  });
}
