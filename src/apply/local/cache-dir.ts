import os from 'node:os';
import path from 'node:path';

/** Where the node image's rootfs tarball is cached; shared by the CLI and the tests on one machine. */
export function deplCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DEPL_CACHE_DIR && env.DEPL_CACHE_DIR.length > 0 ? path.resolve(env.DEPL_CACHE_DIR) : path.join(os.homedir(), '.cache', 'depl');
}
