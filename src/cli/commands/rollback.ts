import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { withEdgeControl } from '../../workflows/edge-control.js';
import { rollback } from '../../workflows/rollback.js';

export default async function command(ctx: CommandContext): Promise<void> {
  const loaded = await requireConfig(ctx);
  const result = await withEdgeControl(loaded, ctx.log, (control) => rollback(control));
  ctx.result({ live: result.live, previous: result.previous }, `Rolled back: version ${result.live} is live at http://${loaded.config.domain}/ (was ${result.previous ?? 'none'})`);
}
