import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { backup } from '../../workflows/backup.js';

export default async function command(ctx: CommandContext, accessory: string, opts: { output?: string; lockWait?: string }): Promise<void> {
  const lockWait = lockWaitMs(opts);
  const loaded = await requireConfig(ctx);
  const { file, manifest } = await backup(loaded, { accessory, ...(opts.output !== undefined ? { output: opts.output } : {}), lockWaitMs: lockWait }, ctx.log);
  const keys = manifest.redis !== undefined ? `, ${manifest.redis.keys} keys` : '';
  ctx.result({ file, manifest }, `Backed up ${accessory} (${manifest.payload.size} bytes${keys}, sha256 ${manifest.payload.sha256.slice(0, 12)}) to ${file}`);
}
