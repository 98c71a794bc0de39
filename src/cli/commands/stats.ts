import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { parseDuration } from '../../plan/duration.js';
import { formatStats } from '../../plan/stats.js';
import { withClusterPort } from '../../workflows/cluster-port.js';
import { edgeStats } from '../../workflows/stats.js';
import { describeUnreadableIntent } from '../../workflows/versions.js';

export default async function command(ctx: CommandContext, opts: { since: string }): Promise<void> {
  const windowMs = parseDuration(opts.since, '--since');
  const loaded = await requireConfig(ctx);
  const stats = await withClusterPort(loaded, ctx.log, (control) => edgeStats(control, windowMs), 'files');
  const marks: Record<string, string> = {};
  if (stats.live) marks[stats.live] = 'live';
  if (stats.canary) marks[stats.canary.version] = `canary ${stats.canary.weight}%`;
  const warning = stats.intentUnreadable !== undefined ? `\n\nwarning: ${describeUnreadableIntent(stats.intentUnreadable)}` : '';
  ctx.result(stats, `Requests through the edge in the last ${opts.since}:\n${formatStats(stats, marks)}${warning}`);
}
