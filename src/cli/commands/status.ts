import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { formatNodeTable } from '../../plan/node-table.js';
import { readStatus, type StatusReport } from '../../workflows/status.js';

function human(report: StatusReport): string {
  const lines = [formatNodeTable(report.nodes), ''];
  lines.push(`live:     ${report.live ?? '(none)'}`);
  lines.push(`canary:   ${report.canary ? `${report.canary.version} at ${report.canary.weight}%` : '(none)'}`);
  lines.push(`versions: ${report.versions.length}`);
  return lines.join('\n');
}

export default async function command(ctx: CommandContext): Promise<void> {
  const loaded = await requireConfig(ctx);
  const report = await readStatus(loaded, ctx.log);
  ctx.result(report, human(report));
}
