import { UserError } from '../../errors.js';
import { parseBranchList } from '../../plan/branch-prune.js';
import { renderPlanText } from '../../plan/change-plan.js';
import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { prune } from '../../workflows/prune.js';
import { pruneInputsFor } from '../../workflows/command-inputs.js';

export default async function command(ctx: CommandContext, opts: { keep: number; branches?: string; lockWait?: string; dryRun?: boolean }): Promise<void> {
  const lockWait = lockWaitMs(opts);
  const branches = opts.branches !== undefined ? parseBranchList(opts.branches) : undefined;
  if (branches !== undefined && branches.length === 0) {
    throw new UserError('--branches names no branch', 'Pass the branches that still exist, e.g. --branches main,feature/login; deploys of all others are removed.', 'PRUNE_BRANCHES');
  }
  const loaded = await requireConfig(ctx);
  const result = await prune(pruneInputsFor(loaded), { keep: opts.keep, lockWaitMs: lockWait, dryRun: opts.dryRun, ...(branches !== undefined ? { branches } : {}) }, ctx.log);
  if (opts.dryRun) {
    // the same plan object the applier runs without --dry-run, and what its routing change would write
    const text = renderPlanText(result.plan).trimEnd();
    ctx.result({ ...result.plan, edgeDiff: result.edgeDiff }, result.edgeDiff === '' ? text : `${text}\n\n${result.edgeDiff.trimEnd()}`);
    return;
  }
  const kept = result.kept.map((k) => `${k.version} (${k.why})`).join(', ') || 'none';
  const human = result.removed.length === 0 ? `Nothing to prune. Kept: ${kept}` : `Removed ${result.removed.join(', ')}. Kept: ${kept}`;
  ctx.result({ removed: result.removed, kept: result.kept }, human);
}
