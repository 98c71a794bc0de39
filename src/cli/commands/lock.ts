import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { readLockStatus, releaseStaleLock } from '../../workflows/cluster-lock.js';

export default async function command(ctx: CommandContext, action: 'status' | 'release'): Promise<void> {
  const loaded = await requireConfig(ctx);
  const report = action === 'status' ? await readLockStatus(loaded, ctx.log) : await releaseStaleLock(loaded, ctx.log);
  ctx.result(report.json, report.human);
}
