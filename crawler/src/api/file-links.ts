import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Short-lived signed links to one stored file of one job, for the gallery's <img> tags: a browser sends no
 * bearer token with an image request, and the long-lived API token must never be put in a URL (it would end up
 * in history, logs and Referer headers). A link carries `expires` (Unix seconds) and `sig`, an HMAC-SHA256 over
 * the job, the file's SHA-256 and the expiry, keyed with a key derived from the API token: every API replica
 * has the token, so every replica verifies the links any other signed, and rotating the token revokes them all.
 *
 * Expiries are rounded up to a whole step, so the gallery's links stay the same for a while and the browser's
 * cache keeps working across reloads; a link lives at least `ttlSeconds` and at most `ttlSeconds + stepSeconds`.
 */
export interface FileLinkSigner {
  /** The query string (`expires=...&sig=...`) that opens `sha256` of `job` until the link expires. */
  sign(job: string, sha256: string): string;
  /** Why the link does not open this file (expired, too far in the future, wrong signature), or null when it does. */
  check(job: string, sha256: string, expires: string | null, sig: string | null): string | null;
}

export const FILE_LINK_TTL_SECONDS = 3600;
export const FILE_LINK_STEP_SECONDS = 600;

export function fileLinkSigner(apiToken: string, now: () => number = Date.now, ttlSeconds = FILE_LINK_TTL_SECONDS, stepSeconds = FILE_LINK_STEP_SECONDS): FileLinkSigner {
  // a key of its own for links: an HMAC under the token itself could be mistaken for any other use of it
  const key = createHmac('sha256', apiToken).update('crawler gallery file links v1').digest();
  const mac = (job: string, sha256: string, expires: number) => createHmac('sha256', key).update(`${job}\n${sha256}\n${expires}`).digest();
  return {
    sign(job, sha256) {
      const expires = Math.ceil((Math.floor(now() / 1000) + ttlSeconds) / stepSeconds) * stepSeconds;
      return `expires=${expires}&sig=${mac(job, sha256, expires).toString('base64url')}`;
    },
    check(job, sha256, expires, sig) {
      if (expires === null || sig === null || !/^\d{1,12}$/.test(expires) || !/^[A-Za-z0-9_-]{43}$/.test(sig)) return 'the link has no valid expires and sig';
      const at = Number(expires);
      const seconds = Math.floor(now() / 1000);
      if (at <= seconds) return 'the link has expired: reload the gallery for fresh ones';
      // no one signs further ahead than this: a later expiry was not made here
      if (at > seconds + ttlSeconds + stepSeconds) return 'the link expires later than any link this API signs';
      return timingSafeEqual(mac(job, sha256, at), Buffer.from(sig, 'base64url')) ? null : 'the link\'s signature does not match';
    },
  };
}
