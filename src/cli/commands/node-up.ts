import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { formatNodeTable } from '../../plan/node-table.js';
import { nodeInputsFor } from '../../workflows/command-inputs.js';
import { nodeUp } from '../../workflows/node-up.js';
import { nodeProgressLogger } from '../node-progress.js';

interface NodeUpOptions { nodes?: number; plan?: boolean; dryRun?: boolean; pool?: Record<string, number> }

export default async function command(ctx: CommandContext, opts: NodeUpOptions): Promise<void> {
  const inputs = nodeInputsFor(await requireConfig(ctx));
  if (opts.dryRun) {
    const { dryRunNodeUp } = await import('../../workflows/node-up-plan.js');
    const { renderPlanText } = await import('../../plan/change-plan.js');
    const plan = await dryRunNodeUp(inputs, ctx.log, { nodes: opts.nodes, interactive: ctx.interactive, pools: opts.pool });
    // the same plans node-up applies (src/plan/swarm-plan.ts), as read from the nodes now
    ctx.result(plan, [
      ...plan.provision.lines,
      ...(plan.shrink.steps.length > 0 ? [renderPlanText(plan.shrink).trimEnd()] : []),
      renderPlanText(plan.swarm).trimEnd(),
      ...(plan.dns ? [renderPlanText(plan.dns).trimEnd()] : []),
    ].join('\n'));
    return;
  }
  if (opts.plan) {
    const { planNodeUp } = await import('../../workflows/node-up-plan.js');
    const plan = await planNodeUp(inputs, ctx.log, { nodes: opts.nodes, interactive: ctx.interactive, pools: opts.pool });
    ctx.result(plan, plan.lines.join('\n'));
    return;
  }
  const progress = ctx.progress ? nodeProgressLogger(ctx.log) : null;
  const result = await nodeUp(inputs, progress ?? ctx.log, { nodes: opts.nodes, interactive: ctx.interactive, pools: opts.pool });
  progress?.done();
  const summary = result.changes.length === 0
    ? `Cluster already as asked: nothing changed (${result.seconds.toFixed(1)} s).`
    : `Cluster ready: ${result.changes.length} change${result.changes.length === 1 ? '' : 's'} in ${result.seconds.toFixed(1)} s.`;
  const notes = result.notes.map((n) => `\nnote: ${n}`).join('');
  const dns = result.dns ? `\nDNS: ${result.dns.domain} and *.${result.dns.domain} point at ${result.dns.address} (Designate zone ${result.dns.zone}).` : '';
  ctx.result(result, `${formatNodeTable(result.nodes)}\n\n${summary} Overlay network: ${result.network} (${result.encrypted ? 'encrypted' : 'not encrypted'}).${dns}${notes}`);
}
