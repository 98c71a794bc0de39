import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { clusterAccessFor } from '../../workflows/command-inputs.js';
import { readLockStatus, releaseStaleLock } from '../../workflows/cluster-lock.js';

export default async function command(ctx: CommandContext, action: 'status' | 'release'): Promise<void> {
  const loaded = await requireConfig(ctx);
  const access = clusterAccessFor(loaded);
  const report = action === 'status' ? await readLockStatus(access, ctx.log) : await releaseStaleLock(access, ctx.log);
  ctx.result(report.json, report.human);
}
