import { confirm } from '@inquirer/prompts';
import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { UserError } from '../../errors.js';
import { nodeInputsFor } from '../../workflows/command-inputs.js';
import { nodeDown, planNodeDown } from '../../workflows/node-down.js';

export default async function command(ctx: CommandContext): Promise<void> {
  const inputs = nodeInputsFor(await requireConfig(ctx));
  if (!ctx.globals.yes) {
    const plan = await planNodeDown(inputs, ctx.log, ctx.interactive);
    const nodes = plan.nodes.length > 0 ? plan.nodes.map((n) => `${n.name} (${n.address})`).join(', ') : 'no nodes (only leftovers)';
    const what = plan.records.length > 0 ? `${nodes} and the DNS records ${plan.records.join('; ')}` : nodes;
    if (!ctx.interactive) {
      throw new UserError(`node-down would remove ${what}, with the swarm and its data`, 'Pass --yes to confirm.', 'CONFIRMATION_NEEDED');
    }
    const ok = await confirm({ message: `Remove ${what}, with the swarm and its data?`, default: false }, { output: process.stderr });
    if (!ok) {
      ctx.result({ removed: [] }, 'Nothing removed.');
      return;
    }
  }
  const result = await nodeDown(inputs, ctx.log, ctx.interactive);
  const records = result.records.length > 0 ? ` and ${result.records.length} DNS record${result.records.length === 1 ? '' : 's'}` : '';
  ctx.result({ removed: result.nodes, records: result.records }, `Removed ${result.nodes.length} node${result.nodes.length === 1 ? '' : 's'}${records}.`);
}
