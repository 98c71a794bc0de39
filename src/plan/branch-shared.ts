import type { DeplConfig } from '../config/schema.js';
import { sharedDatabaseOf, type SharedDatabase } from './branch-database.js';
import { isRedisAccessory, sharedRedisOf, type SharedRedis } from './branch-redis.js';

/**
 * The main line's database on a `perBranch` accessory as depl.yaml says it now (SQL or Redis), or null when the
 * accessory is gone, no longer perBranch, or its settings no longer say where the database is: what prune needs
 * to back up and drop a branch's record.
 */
export function branchSharedOf(config: DeplConfig, accessoryName: string): SharedDatabase | SharedRedis | null {
  const accessory = config.accessories[accessoryName];
  if (accessory?.perBranch === undefined) return null;
  const shared = isRedisAccessory(accessory) || accessory.perBranch === 'prefix' ? sharedRedisOf(accessoryName, accessory, config) : sharedDatabaseOf(accessoryName, accessory);
  return shared.ok ? shared.shared : null;
}
