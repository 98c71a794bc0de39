import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { describeHolder, forceReleaseLock, lockStatus } from '../../apply/lock.js';
import { openCluster } from '../../workflows/cluster.js';

export default async function command(ctx: CommandContext, action: 'status' | 'release'): Promise<void> {
  const loaded = await requireConfig(ctx);
  const app = loaded.config.app;
  const cluster = await openCluster(loaded, ctx.log);
  try {
    if (action === 'status') {
      const holder = await lockStatus(cluster.manager, app);
      ctx.result({ locked: holder !== null, holder }, holder ? `The cluster lock is held by ${describeHolder(holder)}` : 'The cluster lock is free.');
    } else {
      const holder = await forceReleaseLock(cluster.manager, app);
      ctx.result({ released: holder !== null, holder }, holder ? `Released the lock held by ${describeHolder(holder)}` : 'The cluster lock was free; nothing to release.');
    }
  } finally {
    await cluster.close();
  }
}
