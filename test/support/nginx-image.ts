import { copyFile, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { EDGE_PACKAGES } from '../../src/apply/base-images.js';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import { DEBIAN_NGINX_MODULES } from '../../src/plan/nginx.js';
import { silentLogger, type Logger } from '../../src/util/log.js';

/**
 * A few-MB nginx image made offline from this machine's Debian nginx-light binary, its Lua module (and the
 * Lua libraries the module loads) and the shared libraries they link (no registry to pull from): enough for
 * the edge container in tests. depl itself uses the offline base image buildinst makes, from the same Debian
 * packages; this one only avoids a minute of debootstrap in a test that is about the edge.
 */
const BINARIES = ['/usr/sbin/nginx', `${DEBIAN_NGINX_MODULES}/ndk_http_module.so`, `${DEBIAN_NGINX_MODULES}/ngx_http_lua_module.so`];
/**
 * `shell`: what the renewal task runs in the edge's container through the engine gate besides nginx
 * (src/plan/tls/engine-gate.ts renewerEdgeCommands: the probe is bash with /dev/tcp and cat, the process list sh and
 * tr), as the base edge image has. Without it the image has no shell at all (edge-image-probe.test.ts needs that).
 */
const SHELL_TOOLS = ['/bin/bash', '/bin/sh', '/usr/bin/cat', '/usr/bin/tr'];
const LUA_LIBRARIES = '/usr/share/lua/5.1';

export async function importNginxImage(tag: string, log: Logger = silentLogger, options: { shell?: boolean } = {}): Promise<void> {
  await ensureDebianPackages(EDGE_PACKAGES, log);
  const root = await mkdtemp(path.join(os.tmpdir(), 'depl-nginx-image-'));
  try {
    const binaries = [...BINARIES, ...(options.shell ? SHELL_TOOLS : [])];
    const files = new Set(binaries);
    for (const binary of binaries) {
      for (const line of (await execa('ldd', [binary])).stdout.split('\n')) {
        const file = /(\/\S+)/.exec(line.includes('=>') ? line.split('=>')[1]! : line)?.[1];
        if (file !== undefined) files.add(file);
      }
    }
    for (const file of files) {
      await mkdir(path.join(root, path.dirname(file)), { recursive: true });
      // copyFile follows a link: /bin/sh becomes dash itself
      await copyFile(file, path.join(root, file));
    }
    await cp(LUA_LIBRARIES, path.join(root, LUA_LIBRARIES), { recursive: true, dereference: true });
    for (const dir of ['tmp', 'run', 'etc/nginx', 'var/log/nginx', 'var/lib/nginx']) await mkdir(path.join(root, dir), { recursive: true });
    await writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
    await writeFile(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    await execa('sh', ['-c', 'chmod 1777 "$1/tmp" && tar -C "$1" -c . | docker import -c "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin" -c "CMD [\\"nginx\\", \\"-g\\", \\"daemon off;\\"]" - "$2"', 'sh', root, tag]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
