import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { formatNodeTable } from '../../plan/node-table.js';
import { readStatus, type StatusReport } from '../../workflows/status.js';
import { readReleaseStatus } from '../../workflows/versions.js';

function human(report: StatusReport): string {
  const lines = [formatNodeTable(report.nodes), ''];
  lines.push(`live:     ${report.live ?? '(none)'}`);
  lines.push(`canary:   ${report.canary ? `${report.canary.version} at ${report.canary.weight}%` : '(none)'}`);
  lines.push(`versions: ${report.versions.length === 0 ? '(none)' : (report.versions as { version: string }[]).map((v) => v.version).join(', ')}`);
  return lines.join('\n');
}

export default async function command(ctx: CommandContext): Promise<void> {
  const loaded = await requireConfig(ctx);
  const report = await readStatus(loaded, ctx.log, readReleaseStatus);
  ctx.result(report, human(report));
}
