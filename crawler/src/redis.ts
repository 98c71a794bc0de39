import { Redis } from 'ioredis';
import type { ServiceSecret } from './core/secret.js';

/**
 * Two connection profiles. Workers wait out a Redis outage (commands queue until it is back); the API fails
 * fast so a request gets a 503 instead of hanging.
 */
export function workerConnection(url: string, password?: ServiceSecret): Redis {
  return new Redis(url, {
    ...(password !== undefined ? { password: password.reveal() } : {}),
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
    lazyConnect: false,
  });
}

export function apiConnection(url: string, commandTimeoutMs: number, password?: ServiceSecret): Redis {
  return new Redis(url, {
    ...(password !== undefined ? { password: password.reveal() } : {}),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: commandTimeoutMs,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
  });
}
