import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { renderPlanText } from '../../plan/change-plan.js';
import { tlsRenewInputsFor } from '../../workflows/command-inputs.js';
import { renewTlsFromConfig } from '../../workflows/tls/renew.js';

export default async function command(ctx: CommandContext, opts: { force?: boolean; dryRun?: boolean; lockWait?: string }): Promise<void> {
  const loaded = await requireConfig(ctx);
  const report = await renewTlsFromConfig(tlsRenewInputsFor(loaded), ctx.log, { force: opts.force === true, dryRun: opts.dryRun === true, lockWaitMs: lockWaitMs(opts) });
  if (opts.dryRun) {
    ctx.result(report.plan, renderPlanText(report.plan));
    return;
  }
  const done = (kind: string) => report.plan.steps.filter((s) => s.kind === kind).map((s) => ('id' in s ? s.id : ''));
  ctx.result(
    { issued: [...done('issue-certificate'), ...done('install-files-certificate')], renewed: done('renew-certificate'), removed: done('remove-certificate'), certificates: report.certificates, plan: report.plan },
    [renderPlanText(report.plan).trimEnd(), ...report.lines].join('\n'),
  );
}
