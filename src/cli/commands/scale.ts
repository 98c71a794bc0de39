import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { UserError } from '../../errors.js';
import { describeScale, parseScalePairs } from '../../plan/scale.js';
import { assertVersionLabel, withClusterPort } from '../../workflows/cluster-port.js';
import { renderPlanText } from '../../plan/change-plan.js';
import { scaleServices } from '../../workflows/scale.js';

export default async function command(ctx: CommandContext, pairs: string[], opts: { version?: string; lockWait?: string; dryRun?: boolean } = {}): Promise<void> {
  const lockWait = lockWaitMs(opts);
  if (opts.version !== undefined) assertVersionLabel(opts.version);
  const loaded = await requireConfig(ctx);
  const parsed = parseScalePairs(pairs, Object.keys(loaded.config.accessories), loaded.config.autoscale);
  if (!parsed.ok) {
    const [first] = parsed.problems;
    throw new UserError(parsed.problems.length === 1 ? first!.message : `depl scale: ${parsed.problems.map((p) => p.message).join('; ')}`, first!.hint, 'BAD_SCALE');
  }
  const result = await withClusterPort(loaded, ctx.log, (control) => scaleServices({ ...control, lockWaitMs: lockWait }, parsed.replicas, {
    ...(opts.version !== undefined ? { version: opts.version } : {}), dryRun: opts.dryRun,
  }), opts.dryRun ? 'dry-run' : 'apply');
  if (opts.dryRun) {
    // the same plan object the applier runs without --dry-run
    ctx.result(result.plan, renderPlanText(result.plan).trimEnd());
    return;
  }
  const lines = [`Scaled ${result.version}: ${result.services.map((s) => `${s.service.slice(`${loaded.config.app}-${result.version}-`.length)} ${s.from ?? '?'} -> ${s.replicas} (${s.running ?? '?'} running)`).join(', ')}`];
  lines.push(result.recorded
    ? `The app's scale is now ${describeScale(result.scale)}: the next buildinst creates its services with it, and a version switched live is brought to it.`
    : `${result.version} is not live: not recorded as the app's scale (${describeScale(result.scale) || "depl.yaml's replicas"}).`);
  ctx.result({ version: result.version, recorded: result.recorded, scale: result.scale, services: result.services }, lines.join('\n'));
}
