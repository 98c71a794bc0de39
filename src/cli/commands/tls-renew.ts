import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { renderPlanText } from '../../plan/change-plan.js';
import { renderCredentialPlanLines } from '../../plan/tls/renewer-credential.js';
import { tlsRenewInputsFor } from '../../workflows/command-inputs.js';
import { renewTlsFromConfig } from '../../workflows/tls/renew.js';

export default async function command(ctx: CommandContext, opts: { force?: boolean; dryRun?: boolean; lockWait?: string }): Promise<void> {
  const loaded = await requireConfig(ctx);
  const report = await renewTlsFromConfig(tlsRenewInputsFor(loaded), ctx.log, { force: opts.force === true, dryRun: opts.dryRun === true, lockWaitMs: lockWaitMs(opts) });
  const credential = report.credential;
  const credentialText = credential === undefined ? [] : [...renderCredentialPlanLines(credential.plan), ...credential.pending.map((p) => `  ! ${p}`)];
  if (opts.dryRun) {
    ctx.result(credential === undefined ? report.plan : { ...report.plan, renewerCredential: credential.plan }, [renderPlanText(report.plan).trimEnd(), ...credentialText].join('\n'));
    return;
  }
  const done = (kind: string) => report.plan.steps.filter((s) => s.kind === kind).map((s) => ('id' in s ? s.id : ''));
  ctx.result(
    {
      issued: [...done('issue-certificate'), ...done('install-files-certificate')], renewed: done('renew-certificate'), removed: done('remove-certificate'), certificates: report.certificates, plan: report.plan,
      ...(credential !== undefined ? { renewerCredential: { ...credential.plan, pending: credential.pending } } : {}),
    },
    [renderPlanText(report.plan).trimEnd(), ...credentialText, ...report.lines].join('\n'),
  );
}
