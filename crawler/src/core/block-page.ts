/**
 * Tells a site's rate-limit or block page from its content. Sites that throttle or refuse a crawler often do
 * not say so with a status alone: Cloudflare answers its challenge with 403 or 503 (and `cf-mitigated:
 * challenge`), bot walls answer 200 with a captcha form, and a 403 or 429 page says "access denied" in its
 * body. Such a page is not content: the worker tries it again later and, when it stays blocked, records it as
 * blocked with the reason this gives.
 *
 * Pure: it looks at the status, a few headers and the start of the body that the fetch kept.
 */
export interface BlockPageEvidence {
  status: number;
  /** Response headers, names in lower case. */
  headers: Record<string, string | string[] | undefined>;
  /**
   * The start of the body as text: a page's first BLOCK_PAGE_SNIFF_BYTES characters (the text its parser was
   * given), an error answer's first BLOCK_PAGE_SNIFF_BYTES bytes decoded (it is not parsed).
   */
  bodyStart: string;
}

export type BlockPageVerdict = { blocked: false } | { blocked: true; reason: string };

/** How much of a body the classifier needs: block pages are small, and their signatures are near the top. */
export const BLOCK_PAGE_SNIFF_BYTES = 32 * 1024;

/**
 * A 200 page larger than this is content even when it mentions a captcha: the interstitials this looks for are
 * a few kilobytes (Cloudflare's ~7 KiB, DataDome's and PerimeterX's under 5 KiB), an article is not.
 */
const MAX_INTERSTITIAL_CHARS = 24 * 1024;

interface Signature {
  reason: string;
  /** Matched against the body's start (case-insensitively). */
  body: RegExp;
  /** Matches on a 200 answer too (not only on 403/429/503): the signature is a challenge's own markup. */
  onSuccess: boolean;
}

const SIGNATURES: Signature[] = [
  { reason: 'Cloudflare challenge', body: /<title>\s*just a moment\.\.\.|\/cdn-cgi\/challenge-platform\/|cf-chl-|cf_chl_opt/i, onSuccess: true },
  { reason: 'Cloudflare block', body: /<title>\s*attention required!\s*\|\s*cloudflare|cf-error-details|sorry, you have been blocked/i, onSuccess: true },
  { reason: 'captcha', body: /<title>\s*(captcha|security check|are you a robot|verify(ing)? you are (a )?human|human verification)\b|class=["'][^"']*\b(g-recaptcha|h-captcha)\b|captcha-delivery\.com|px-captcha|hcaptcha\.com\/1\/api\.js|google\.com\/recaptcha\/api\.js/i, onSuccess: true },
  { reason: 'access denied', body: /<title>\s*(access denied|403 forbidden|forbidden|request rejected|blocked)\b|you don['’]t have permission to access|incapsula incident id|request unsuccessful\. incapsula/i, onSuccess: true },
  { reason: 'rate limited', body: /too many requests|rate limit(ed)? exceeded|you are being rate limited|slow down/i, onSuccess: false },
];

function header(evidence: BlockPageEvidence, name: string): string {
  const value = evidence.headers[name];
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}

export function classifyBlockPage(evidence: BlockPageEvidence): BlockPageVerdict {
  const { status } = evidence;
  const refusal = status === 403 || status === 429 || status === 503;
  const mitigated = header(evidence, 'cf-mitigated').toLowerCase();
  if (mitigated.includes('challenge')) return { blocked: true, reason: `Cloudflare challenge (cf-mitigated, HTTP ${status})` };
  if (status === 429) return { blocked: true, reason: 'rate limited (HTTP 429)' };
  const success = status >= 200 && status < 300;
  if (!refusal && !success) return { blocked: false };
  if (success && evidence.bodyStart.length > MAX_INTERSTITIAL_CHARS) return { blocked: false };
  for (const signature of SIGNATURES) {
    if (success && !signature.onSuccess) continue;
    if (signature.body.test(evidence.bodyStart)) return { blocked: true, reason: `${signature.reason} (HTTP ${status})` };
  }
  return { blocked: false };
}
