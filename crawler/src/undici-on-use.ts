import type { request as undiciRequest } from 'undici';

/**
 * undici's `request`, its module loaded on the first call. The API imports the config loader and the image stores,
 * but with a file:// config and the default store it makes no HTTP request of its own; loading undici at start cost
 * it ~5 MB of its peak RSS for nothing (measured idle, undici preloaded or not: 82-84 against 77-79 MB) (the worker loads undici anyway, for its fetches).
 */
export async function request(...args: Parameters<typeof undiciRequest<null>>): ReturnType<typeof undiciRequest<null>> {
  const undici = await import('undici');
  return undici.request<null>(...args);
}
