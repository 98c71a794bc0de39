import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { clusterAccessFor } from '../../workflows/command-inputs.js';
import { formatVersions } from '../../plan/versions-table.js';
import { listVersions } from '../../workflows/versions.js';

export default async function command(ctx: CommandContext): Promise<void> {
  const loaded = await requireConfig(ctx);
  const rows = await listVersions(clusterAccessFor(loaded), ctx.log);
  ctx.result({ versions: rows }, formatVersions(rows));
}
