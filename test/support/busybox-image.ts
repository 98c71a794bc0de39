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

/** The Remote that runs docker on the manager (kept structural, so any cluster's manager fits). */
interface ManagerShell {
  exec(argv: string[]): Promise<unknown>;
}

/**
 * A version of a test app as depl would install it, without building anything: `<app>-<version>-web`, busybox
 * httpd answering `/` with the version (and, with `hostname`, the task's host) and `/healthz` with "ok", on
 * the app's overlay network with depl's labels. `http: false` leaves out the edge labels (a version the edge
 * must not serve yet).
 */
export async function startBusyboxVersion(manager: ManagerShell, options: {
  app: string;
  version: string;
  network: string;
  image: string;
  replicas?: number;
  http?: boolean;
  health?: boolean;
  hostname?: boolean;
}): Promise<void> {
  const { app, version } = options;
  const page = options.hostname ? `${version} $(hostname)` : version;
  const serve = `mkdir -p /www && echo "${page}" > /www/index.html && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www`;
  const http = options.http === false ? [] : ['--label', 'depl.http=true', '--label', 'depl.port=8080', ...(options.health ? ['--label', 'depl.health=/healthz'] : [])];
  await manager.exec(['docker', 'service', 'create', '--detach', '--no-resolve-image', '--name', `${app}-${version}-web`,
    '--network', options.network, '--endpoint-mode', 'dnsrr', '--replicas', String(options.replicas ?? 1), '--stop-grace-period', '2s',
    '--label', `depl.app=${app}`, '--label', `depl.version=${version}`, '--label', 'depl.service=web', ...http, options.image, 'sh', '-c', serve]);
}
