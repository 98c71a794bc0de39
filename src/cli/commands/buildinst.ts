import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { renderPlanText } from '../../plan/change-plan.js';
import { buildinst } from '../../workflows/buildinst.js';
import { buildinstInputsFor } from '../../workflows/command-inputs.js';

export default async function command(ctx: CommandContext, opts: { version?: string; branch?: string; lockWait?: string; dryRun?: boolean }): Promise<void> {
  const lockWait = lockWaitMs(opts);
  const loaded = await requireConfig(ctx);
  const result = await buildinst(buildinstInputsFor(loaded), { version: opts.version, branch: opts.branch, lockWaitMs: lockWait, dryRun: opts.dryRun }, ctx.log);
  if (opts.dryRun) {
    // the plan the applier would run, as data (--json) or as text; nothing was built or changed
    ctx.result({ dryRun: true, ...result.plan }, renderPlanText(result.plan));
    return;
  }
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  ctx.log.info(`build ${seconds(result.timings.build)}, distribute ${seconds(result.timings.distribute)}, install ${seconds(result.timings.install)}, total ${seconds(result.timings.total)}`);
  ctx.result(
    {
      version: result.version, url: result.url, services: result.services,
      ...(result.httpsMissing !== undefined ? { httpsMissing: result.httpsMissing } : {}),
      ...(result.tlsWithheld !== undefined ? { tlsWithheld: result.tlsWithheld } : {}),
      ...(result.renewer !== undefined ? { renewer: result.renewer } : {}),
      ...(result.hookFailures !== undefined ? { hookFailures: result.hookFailures } : {}),
    },
    `Version ${result.version} is successfully installed\n${result.url !== null ? `Preview: ${result.url}` : 'No service has http: true, so it is not served through the edge (nor can it be switched live); depl scale, run, exec and logs take --version'}${result.httpsMissing !== undefined ? `\nHTTPS is missing for this version: ${result.httpsMissing}` : ''}` +
      (result.tlsWithheld !== undefined ? `\n${result.tlsWithheld.join('\n')}` : '') +
      (result.renewer !== undefined && result.renewer !== 'unchanged' ? `\nCertificate renewal task: ${result.renewer}` : ''),
  );
}
