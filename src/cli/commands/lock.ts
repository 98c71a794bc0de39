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
      const status = await lockStatus(cluster.manager, app);
      const human = status === null
        ? 'The cluster lock is free.'
        : `The cluster lock is held by ${describeHolder(status.holder, status.expiresIn)}${status.expiresIn <= 0 ? '; the next run takes it over' : ''}`;
      ctx.result(status === null ? { locked: false, holder: null } : { locked: true, holder: status.holder, expiresInSeconds: status.expiresIn }, human);
    } else {
      const { released, holder } = await forceReleaseLock(cluster.manager, app);
      ctx.result({ released, holder }, released ? `Released the lock held by ${describeHolder(holder)}` : 'The cluster lock was free; nothing to release.');
    }
  } finally {
    await cluster.close();
  }
}
