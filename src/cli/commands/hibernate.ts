import { renderPlanText } from '../../plan/change-plan.js';
import { describeHibernation } from '../../plan/hibernation.js';
import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { hibernate } from '../../workflows/hibernation.js';
import { hibernationInputsFor } from '../../workflows/command-inputs.js';
import { hibernationTargetFor } from '../../workflows/hibernation-target.js';

export default async function command(ctx: CommandContext, opts: { dryRun?: boolean; lockWait?: string }): Promise<void> {
  const loaded = await requireConfig(ctx);
  const target = await hibernationTargetFor(hibernationInputsFor(loaded), ctx.log, 'hibernate', { interactive: ctx.interactive, lockWaitMs: lockWaitMs(opts) });
  const { plan, record, dryRun } = await hibernate(target, { dryRun: opts.dryRun === true });
  // the same plan object the applier runs without --dry-run
  if (dryRun) return ctx.result(plan, renderPlanText(plan).trimEnd());
  if (plan.steps.length === 0) return ctx.result({ changed: false, hibernation: record }, plan.notes.join('\n'));
  ctx.result({ changed: true, hibernation: record }, record === null ? 'Hibernated.' : `${loaded.config.app} is ${describeHibernation(record)}.`);
}
