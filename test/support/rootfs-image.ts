import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

/**
 * Builds an image offline (no registry here): copies host binaries and the shared libraries `ldd` names
 * into a folder, then `docker import`s it. Enough for small test images; node images use debootstrap.
 */
export async function importHostBinariesImage(tag: string, binaries: string[], entrypoint: string[]): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'depl-rootfs-'));
  try {
    // merged-/usr layout, as on Debian 12, so /bin/sh and /lib64/ld-linux*.so resolve
    for (const dir of ['bin', 'sbin', 'lib', 'lib64']) {
      await mkdir(path.join(root, 'usr', dir), { recursive: true });
      await symlink(`usr/${dir}`, path.join(root, dir));
    }
    const files = new Set<string>();
    for (const binary of binaries) {
      const resolved = (await execa('sh', ['-c', `command -v ${binary}`])).stdout.trim();
      if (!resolved.startsWith('/')) throw new Error(`${binary} is not an executable file on this machine (a shell builtin?)`);
      files.add(resolved);
      const ldd = await execa('ldd', [resolved], { reject: false });
      for (const match of String(ldd.stdout).matchAll(/(\/[^\s]+)/g)) files.add(match[1]!);
    }
    for (const file of files) {
      const target = path.join(root, file);
      await mkdir(path.dirname(target), { recursive: true });
      await cp(file, target, { dereference: true });
    }
    await mkdir(path.join(root, 'tmp'), { recursive: true });
    await writeFile(path.join(root, 'etc-marker'), 'depl test image\n');
    await execa('sh', ['-c', `tar -C ${root} -c . | docker import -c 'ENTRYPOINT ${JSON.stringify(entrypoint)}' - ${tag}`]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
