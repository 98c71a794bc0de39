import { chmod, mkdir, mkdtemp, rm, symlink, writeFile, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import type { Logger } from '../../src/util/log.js';
import { silentLogger } from '../../src/util/log.js';

/**
 * A few-MB image with a static busybox (sh, httpd, wget, nslookup, nc...), built offline from Debian's
 * busybox-static package: for swarm services in tests, where images cannot be pulled.
 */
export async function importBusyboxImage(tag: string, log: Logger = silentLogger): Promise<void> {
  await ensureDebianPackages(['busybox-static'], log);
  const root = await mkdtemp(path.join(os.tmpdir(), 'depl-busybox-'));
  try {
    await mkdir(path.join(root, 'bin'), { recursive: true });
    await copyFile('/bin/busybox', path.join(root, 'bin', 'busybox'));
    await chmod(path.join(root, 'bin', 'busybox'), 0o755);
    const applets = (await execa('/bin/busybox', ['--list'])).stdout.split('\n').filter((a) => a && a !== 'busybox');
    for (const applet of applets) await symlink('busybox', path.join(root, 'bin', applet));
    for (const dir of ['tmp', 'etc', 'www']) await mkdir(path.join(root, dir), { recursive: true });
    await writeFile(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    await execa('sh', ['-c', 'tar -C "$1" -c . | docker import -c "ENV PATH=/bin" -c "CMD [\\"/bin/sh\\"]" - "$2"', 'sh', root, tag]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
