import { renderPlanText } from '../../plan/change-plan.js';
import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { backup } from '../../workflows/backup.js';
import { accessoryInputsFor } from '../../workflows/command-inputs.js';

export default async function command(ctx: CommandContext, accessory: string, opts: { output?: string; lockWait?: string; dryRun?: boolean }): Promise<void> {
  const lockWait = lockWaitMs(opts);
  const loaded = await requireConfig(ctx);
  const { file, manifest, plan } = await backup(accessoryInputsFor(loaded), { accessory, ...(opts.output !== undefined ? { output: opts.output } : {}), lockWaitMs: lockWait, dryRun: opts.dryRun === true }, ctx.log);
  if (manifest === undefined) {
    // the same plan object the applier runs without --dry-run
    ctx.result(plan, renderPlanText(plan).trimEnd());
    return;
  }
  const keys = manifest.redis !== undefined ? `, ${manifest.redis.keys} keys` : '';
  ctx.result({ file, manifest }, `Backed up ${accessory} (${manifest.payload.size} bytes${keys}, sha256 ${manifest.payload.sha256.slice(0, 12)}) to ${file}`);
}
