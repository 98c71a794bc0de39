/** How depl composes the names it makes from validated parts; the checks themselves are in src/names.ts. */
import { checkVersionLabel } from '../names.js';

/** Default version id: the UTC time of the build, `20261122-130512`. Time is passed in: plan/ has no clock. */
export function versionFromTime(now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${now.getUTCFullYear()}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}-` +
    `${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}${pad(now.getUTCSeconds())}`;
}

/**
 * A branch name becomes its staging version label: `feature/Login_Page` -> `feature-login-page`.
 * Returns null when nothing label-like is left, so the caller can reject it with the original name.
 */
export function branchSlug(branch: string): string | null {
  const slug = branch
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return slug.length > 0 && checkVersionLabel(slug).ok ? slug : null;
}

export function serviceName(app: string, version: string, service: string): string {
  return `${app}-${version}-${service}`;
}

export function versionHost(version: string, domain: string): string {
  return `${version}.${domain}`;
}
