import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { prune } from '../../workflows/prune.js';

export default async function command(ctx: CommandContext, opts: { keep: number; lockWait?: string }): Promise<void> {
  const lockWait = lockWaitMs(opts);
  const loaded = await requireConfig(ctx);
  const result = await prune(loaded, { keep: opts.keep, lockWaitMs: lockWait }, ctx.log);
  const kept = result.kept.map((k) => `${k.version} (${k.why})`).join(', ') || 'none';
  const human = result.removed.length === 0 ? `Nothing to prune. Kept: ${kept}` : `Removed ${result.removed.join(', ')}. Kept: ${kept}`;
  ctx.result(result, human);
}
