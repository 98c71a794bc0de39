import { quote } from '../../plan/shell.js';
import type { EdgeSite } from './site.js';

/** Access-log lines (JSON, see plan/nginx.ts) of requests that ended at or after sinceMs. */
export async function readSiteLogs(site: EdgeSite, sinceMs: number): Promise<string[]> {
  const file = `${site.dir}/logs/access.log`;
  const sinceSeconds = sinceMs / 1000;
  // Filtered on the node, so only the window crosses SSH; every line starts with {"msec":<seconds>,
  const awk = `match($0, /^\\{"msec":[0-9.]+/) && substr($0, 9, RLENGTH - 8) + 0 >= ${sinceSeconds.toFixed(3)}`;
  const files = [`${file}.1`, file].map(quote).join(' ');
  const result = await site.remote.shell(`for f in ${files}; do [ ! -f "$f" ] || awk ${quote(awk)} "$f"; done`, { timeoutMs: 120_000 });
  return result.stdout.split('\n').filter((line) => {
    const match = /^\{"msec":([0-9.]+),/.exec(line);
    return match !== null && Number(match[1]) >= sinceSeconds;
  });
}
