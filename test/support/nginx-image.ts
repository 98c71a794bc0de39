import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import { silentLogger, type Logger } from '../../src/util/log.js';

/**
 * A few-MB nginx image made offline from this machine's Debian nginx-light binary and the libraries it
 * links (no registry to pull from): enough for the edge container in tests. depl itself uses the offline
 * base image buildinst makes; this one only avoids a minute of debootstrap in a test that is about the edge.
 */
export async function importNginxImage(tag: string, log: Logger = silentLogger): Promise<void> {
  await ensureDebianPackages(['nginx-light'], log);
  const root = await mkdtemp(path.join(os.tmpdir(), 'depl-nginx-image-'));
  try {
    const libraries = (await execa('ldd', ['/usr/sbin/nginx'])).stdout
      .split('\n')
      .map((line) => /(\/\S+)/.exec(line.includes('=>') ? line.split('=>')[1]! : line)?.[1])
      .filter((file): file is string => file !== undefined);
    for (const file of ['/usr/sbin/nginx', ...libraries]) {
      await mkdir(path.join(root, path.dirname(file)), { recursive: true });
      await copyFile(file, path.join(root, file));
    }
    for (const dir of ['tmp', 'run', 'etc/nginx', 'var/log/nginx', 'var/lib/nginx']) await mkdir(path.join(root, dir), { recursive: true });
    await writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
    await writeFile(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    await execa('sh', ['-c', 'chmod 1777 "$1/tmp" && tar -C "$1" -c . | docker import -c "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin" -c "CMD [\\"nginx\\", \\"-g\\", \\"daemon off;\\"]" - "$2"', 'sh', root, tag]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
