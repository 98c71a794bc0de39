import { OperationError } from '../errors.js';
import { bgsaveProgress, bgsaveReply, keyCount, parseConfigGet, parseRedisInfo, type AccessoryVolume, type RedisSettings, redisSettings } from '../plan/backup.js';
import type { Logger } from '../util/log.js';
import { pollUntil } from '../util/poll.js';
import type { AccessoryData } from './cluster-port.js';

/** What backup and restore ask a Redis accessory (through the port's redis-cli), and its snapshot loop. */

export async function redisInfo(data: AccessoryData, accessory: string, section?: string): Promise<Record<string, string>> {
  return parseRedisInfo(await data.redis(accessory, section === undefined ? ['INFO'] : ['INFO', section]));
}

/** Where Redis keeps its files, and whether it is still loading them. */
export async function readRedisSettings(data: AccessoryData, accessory: string, volume: AccessoryVolume, log: Logger): Promise<{ settings: RedisSettings; loading: boolean }> {
  const info = await redisInfo(data, accessory);
  let config: Record<string, string>;
  try {
    config = parseConfigGet(await data.redis(accessory, ['CONFIG', 'GET', '*']));
  } catch (error) {
    log.warn(`CONFIG GET is not allowed (${(error as Error).message}); assuming Redis keeps its files in ${volume.target}`);
    config = { dir: volume.target };
  }
  return { settings: redisSettings(info, config), loading: info.loading === '1' };
}

/** BGSAVE, then wait (on INFO persistence, not on time) until a save that began after the request has ended. */
export async function redisSnapshot(data: AccessoryData, accessory: string, timeoutMs: number, log: Logger): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const before = await redisInfo(data, accessory, 'persistence');
    const reply = bgsaveReply(await data.redis(accessory, ['BGSAVE', 'SCHEDULE']));
    if (typeof reply === 'object') throw new OperationError(`Redis refused BGSAVE: ${reply.error}`, undefined, 'REDIS_BGSAVE');
    if (reply === 'busy') {
      log.step('a snapshot is already being written; waiting for it to finish, then asking for one of our own');
      await pollUntil(async () => ((await redisInfo(data, accessory, 'persistence')).rdb_bgsave_in_progress === '0' ? true : undefined), {
        timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 200, onTimeout: () => { throw new OperationError('the running BGSAVE did not finish in time', undefined, 'REDIS_BGSAVE'); },
      });
      continue;
    }
    const outcome = await pollUntil(async () => {
      const state = bgsaveProgress(before, await redisInfo(data, accessory, 'persistence'));
      return state === 'waiting' ? undefined : state;
    }, {
      timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 200, maxIntervalMs: 2_000,
      onTimeout: () => { throw new OperationError(`Redis's snapshot did not finish within ${Math.round(timeoutMs / 1000)} s`, 'See the accessory\'s log (docker service logs) for the save\'s progress.', 'REDIS_BGSAVE'); },
    });
    if (outcome === 'failed') throw new OperationError('Redis could not write its snapshot (rdb_last_bgsave_status:err)', 'See the accessory\'s log (docker service logs): often a full disk or a volume Redis cannot write.', 'REDIS_BGSAVE');
    return;
  }
}

/** Redis answers and has loaded its data; with a backup of keys, there must be keys. Returns the keys it has. */
export async function verifyRedisLoaded(data: AccessoryData, accessory: string, expectedKeys: number, timeoutMs: number): Promise<number> {
  const info = await pollUntil(async () => {
    try {
      const fields = await redisInfo(data, accessory);
      return fields.loading === '0' ? fields : undefined;
    } catch {
      return undefined;
    }
  }, { timeoutMs, intervalMs: 300, onTimeout: () => { throw new OperationError(`${accessory} did not answer (or kept loading) after the restore`, `See docker service logs ${accessory}.`, 'RESTORE_VERIFY'); } });
  const keys = keyCount(info);
  if (expectedKeys > 0 && keys === 0) {
    throw new OperationError(`${accessory} started with no keys, but the backup was made with ${expectedKeys}`, 'The data did not load: see docker service logs for what Redis said about its files.', 'RESTORE_VERIFY');
  }
  return keys;
}
