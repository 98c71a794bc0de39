import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { assertVersionLabel, withEdgeControl } from '../../workflows/edge-control.js';
import { dryRunResult, formatDryRun } from '../../workflows/release.js';
import { switchVersion } from '../../workflows/switch.js';

export default async function command(ctx: CommandContext, version: string, opts: { lockWait?: string; dryRun?: boolean } = {}): Promise<void> {
  assertVersionLabel(version);
  const lockWait = lockWaitMs(opts);
  const loaded = await requireConfig(ctx);
  const result = await withEdgeControl(loaded, ctx.log, (control) => switchVersion({ ...control, lockWaitMs: lockWait }, version, { dryRun: opts.dryRun }), opts.dryRun);
  if (opts.dryRun) {
    ctx.result(dryRunResult(result.change), formatDryRun(result.change));
    return;
  }
  ctx.log.info(`switched in ${(result.elapsedMs / 1000).toFixed(2)}s (${Object.entries(result.phases).map(([k, v]) => `${k} ${v}ms`).join(', ')})`);
  ctx.result(
    { live: result.live, previous: result.previous },
    `Version ${result.live} is live at http://${loaded.config.domain}/${result.previous ? ` (previous: ${result.previous}; \`depl rollback\` goes back)` : ''}`,
  );
}
