import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { assertVersionLabel, withClusterPort } from '../../workflows/cluster-port.js';
import { dryRunResult, formatDryRun } from '../../workflows/release.js';
import { switchVersion } from '../../workflows/switch.js';

export default async function command(ctx: CommandContext, version: string, opts: { lockWait?: string; dryRun?: boolean } = {}): Promise<void> {
  assertVersionLabel(version);
  const lockWait = lockWaitMs(opts);
  const loaded = await requireConfig(ctx);
  // performance.now() counts from this process's start: Node's own start, loading depl, reading depl.yaml
  const start = performance.now();
  let connect = 0;
  const result = await withClusterPort(loaded, ctx.log, (control) => {
    connect = performance.now() - start;
    return switchVersion({ ...control, lockWaitMs: lockWait }, version, { dryRun: opts.dryRun });
  }, opts.dryRun ? 'dry-run' : 'apply');
  if (opts.dryRun) {
    ctx.result(dryRunResult(result.change), formatDryRun(result.change));
    return;
  }
  // connect: SSH to the manager, certificates due for renewal, the edge container
  const phases = { start: Math.round(start), connect: Math.round(connect), ...result.phases };
  ctx.log.info(`switched in ${(performance.now() / 1000).toFixed(2)}s (${Object.entries(phases).map(([k, v]) => `${k} ${v}ms`).join(', ')})`);
  ctx.result(
    { live: result.live, previous: result.previous, ...(result.hookFailures !== undefined ? { hookFailures: result.hookFailures } : {}) },
    `Version ${result.live} is live at http://${loaded.config.domain}/${result.previous ? ` (previous: ${result.previous}; \`depl rollback\` goes back)` : ''}`,
  );
}
