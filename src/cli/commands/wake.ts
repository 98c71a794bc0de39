import { renderPlanText } from '../../plan/change-plan.js';
import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { wake } from '../../workflows/hibernation.js';
import { hibernationInputsFor } from '../../workflows/command-inputs.js';
import { hibernationTargetFor } from '../../workflows/hibernation-target.js';

export default async function command(ctx: CommandContext, opts: { dryRun?: boolean; lockWait?: string }): Promise<void> {
  const loaded = await requireConfig(ctx);
  const target = await hibernationTargetFor(hibernationInputsFor(loaded), ctx.log, 'wake', { interactive: ctx.interactive, lockWaitMs: lockWaitMs(opts) });
  const { plan, restored, dryRun } = await wake(target, { dryRun: opts.dryRun === true });
  // the same plan object the applier runs without --dry-run
  if (dryRun) return ctx.result(plan, renderPlanText(plan).trimEnd());
  if (plan.steps.length === 0) return ctx.result({ changed: false, restored }, plan.notes.join('\n'));
  const live = plan.steps.find((s) => s.kind === 'wait-live');
  const what = restored.length > 0 ? ` Restored from the hibernate backups: ${restored.join(', ')}.` : '';
  ctx.result({ changed: true, restored, live: live?.kind === 'wait-live' ? live.version : null },
    `${loaded.config.app} is awake${live?.kind === 'wait-live' ? `: version ${live.version} is live and healthy at http://${loaded.config.domain}/` : ''}.${what}`);
}
