import { Redis } from 'ioredis';
import type { ServiceSecret } from './core/secret.js';

/**
 * Two connection profiles. Workers wait out a Redis outage (commands queue until it is back); the API fails
 * fast so a request gets a 503 instead of hanging.
 *
 * A worker's command connection pipelines (`pipelined`): every command issued in one turn of the event loop is sent
 * in one write and read back in one read (ioredis' auto-pipelining). A worker with 32 images in flight finishes
 * several in the same turn (responses read in the same poll): their host slots, stores and completions then cost
 * one socket write, not one each, which was a sixth of the worker's CPU with images on. Each script is still its
 * own atomic step, run in the order issued. Not for the blocking reader (its XREADGROUP holds the connection).
 */
export function workerConnection(url: string, password?: ServiceSecret, options: { pipelined?: boolean } = {}): Redis {
  return new Redis(url, {
    ...(password !== undefined ? { password: password.reveal() } : {}),
    ...(options.pipelined === true ? { enableAutoPipelining: true } : {}),
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
