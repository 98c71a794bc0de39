/**
 * The one way depl waits for something to become true: a booting node's SSH, a health check, swarm tasks,
 * a Heat stack, a lock. Every wait has a deadline; what happens when it passes is the caller's (usually a
 * typed error saying what was still missing).
 */
export interface PollOptions<T> {
  /** Give up after this long; 0 makes exactly one check. */
  timeoutMs: number;
  /** Pause between checks. */
  intervalMs: number;
  /** When set, the pause doubles after every check, up to this. */
  maxIntervalMs?: number;
  /** Called once the deadline has passed without a result: return a fallback or throw. */
  onTimeout: (attempts: number) => T | Promise<T>;
  /** Stops waiting early: the pending pause ends and the abort reason is thrown. */
  signal?: AbortSignal;
  /** For tests with a fake clock. */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Runs `check` until it returns something other than `undefined`, pausing between checks; an exception
 * from `check` ends the wait at once (only the caller knows which failures are worth retrying). The last
 * pause is shortened so that the final check happens at the deadline rather than after it.
 */
export async function pollUntil<T>(check: (attempt: number) => Promise<T | undefined>, options: PollOptions<T>): Promise<T> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? delay;
  const deadline = now() + options.timeoutMs;
  let pause = options.intervalMs;
  for (let attempt = 1; ; attempt += 1) {
    options.signal?.throwIfAborted();
    const value = await check(attempt);
    if (value !== undefined) return value;
    const left = deadline - now();
    if (left <= 0) return options.onTimeout(attempt);
    await sleep(Math.min(pause, left), options.signal);
    if (options.maxIntervalMs !== undefined) pause = Math.min(options.maxIntervalMs, pause * 2);
  }
}

/** A pause that an AbortSignal can cut short (rejecting with its reason). */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
