import { z } from 'zod';
import { canonicalUrl, describeUnsupportedUrl } from './url.js';
import type { LinkScope } from './scope.js';
import { PATTERN_LIMITS, describeBadPattern } from './url-patterns.js';
import { IMAGE_TYPES, type ImageType } from './image-type.js';

/** Limits a submitter may ask for; the service config caps them further (api.maxPagesLimit). */
export const MAX_SEED_URLS = 100;
export const MAX_DEPTH = 20;

export const MAX_PATTERNS = PATTERN_LIMITS.maxPatterns;
export const DEFAULT_MAX_IMAGE_BYTES = 5 * 1024 * 1024;
const urlPattern = z.string().min(1).superRefine((value, ctx) => {
  const problem = describeBadPattern(value);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});

const seedUrl = z.string().max(2048, 'expected a URL of at most 2048 characters').superRefine((value, ctx) => {
  const problem = describeUnsupportedUrl(value);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: `"${value.slice(0, 100)}" ${problem}` });
});

export const jobRequestSchema = z.strictObject({
  urls: z.array(seedUrl).min(1, 'expected at least one URL').max(MAX_SEED_URLS, `expected at most ${MAX_SEED_URLS} URLs`),
  maxDepth: z.number().int().min(0).max(MAX_DEPTH).default(2),
  maxPages: z.number().int().min(1).default(100),
  /** Shorthand for scope: true = "host", false = "any". Ignored when scope is given. */
  sameHost: z.boolean().optional(),
  scope: z.enum(['host', 'origin', 'domain', 'any']).optional(),
  /** URL patterns a link must match one of to be followed (globs, or /regex/flags); the start URLs always are. */
  include: z.array(urlPattern).max(MAX_PATTERNS).default([]),
  /** URL patterns whose links are not followed. */
  exclude: z.array(urlPattern).max(MAX_PATTERNS).default([]),
  /** Also start from the sitemaps robots.txt lists and /sitemap.xml of each start URL's origin. */
  useSitemaps: z.boolean().default(false),
  /** Download every image found (once per URL), through the same address, robots and politeness rules as pages. */
  fetchImages: z.boolean().default(false),
  /** Images larger than this are recorded as too large, not stored (the service caps it: images.maxImageBytes). */
  maxImageBytes: z.number().int().min(1).default(DEFAULT_MAX_IMAGE_BYTES),
  /** Types (sniffed from the bytes) that are stored; others are recorded as skipped. */
  imageTypes: z.array(z.enum(IMAGE_TYPES)).min(1).default([...IMAGE_TYPES]),
  /** Keep every page and image answer as fetched (headers and body), for `depl crawl export --format wacz`. */
  archive: z.boolean().default(false),
}).superRefine((request, ctx) => {
  const count = request.include.length + request.exclude.length;
  if (count > MAX_PATTERNS) {
    ctx.addIssue({ code: 'custom', path: ['include'], message: `expected at most ${MAX_PATTERNS} include and exclude patterns together, got ${count}` });
  }
});

export type JobRequestInput = z.input<typeof jobRequestSchema>;

/** A validated submission, seeds canonicalised and deduplicated. */
export interface JobRequest {
  urls: string[];
  maxDepth: number;
  maxPages: number;
  scope: LinkScope;
  include: string[];
  exclude: string[];
  useSitemaps: boolean;
  fetchImages: boolean;
  maxImageBytes: number;
  imageTypes: ImageType[];
  archive: boolean;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; errors: string[] };

export function parseJobRequest(input: unknown, limits: { maxPages: number; maxImageBytes: number }): ParseResult<JobRequest> {
  const result = jobRequestSchema.safeParse(input);
  if (!result.success) {
    return { ok: false, errors: result.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'body'}: ${issue.message}`) };
  }
  const { urls, maxDepth, maxPages, sameHost, scope, include, exclude, useSitemaps, fetchImages, imageTypes, archive } = result.data;
  if (maxPages > limits.maxPages) return { ok: false, errors: [`maxPages: expected at most ${limits.maxPages} (this service's limit)`] };
  const asked = (input as { maxImageBytes?: unknown }).maxImageBytes;
  if (typeof asked === 'number' && asked > limits.maxImageBytes) return { ok: false, errors: [`maxImageBytes: expected at most ${limits.maxImageBytes} (this service's limit)`] };
  const maxImageBytes = Math.min(result.data.maxImageBytes, limits.maxImageBytes);
  const canonical = [...new Set(urls.map((u) => canonicalUrl(u)).filter((u): u is string => u !== null))];
  return { ok: true, value: { urls: canonical, maxDepth, maxPages, scope: scope ?? (sameHost === false ? 'any' : 'host'), include, exclude, useSitemaps,
    fetchImages, maxImageBytes, imageTypes: [...new Set(imageTypes)], archive } };
}

/** The seed's plain-text form: one URL per line; blank lines and # comments are ignored. */
export function jobRequestFromText(text: string): JobRequestInput {
  const urls = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  return { urls };
}
