import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { withClusterPort } from '../../workflows/cluster-port.js';
import { dryRunResult, formatDryRun } from '../../workflows/release.js';
import { rollback } from '../../workflows/rollback.js';

export default async function command(ctx: CommandContext, opts: { lockWait?: string; dryRun?: boolean } = {}): Promise<void> {
  const lockWait = lockWaitMs(opts);
  const loaded = await requireConfig(ctx);
  const result = await withClusterPort(loaded, ctx.log, (control) => rollback({ ...control, lockWaitMs: lockWait }, { dryRun: opts.dryRun }), opts.dryRun ? 'dry-run' : 'apply');
  if (opts.dryRun) {
    ctx.result(dryRunResult(result.change), formatDryRun(result.change));
    return;
  }
  ctx.result({ live: result.live, previous: result.previous, ...(result.hookFailures !== undefined ? { hookFailures: result.hookFailures } : {}) }, `Rolled back: version ${result.live} is live at http://${loaded.config.domain}/ (was ${result.previous ?? 'none'})`);
}
