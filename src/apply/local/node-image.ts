import { access, chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { OperationError } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { hostDebianMirror } from '../host/debian-mirror.js';
import { ensureDebianPackages } from '../host/packages.js';
import { deplCacheDir } from './cache-dir.js';
import { withFileLock } from './file-lock.js';
import { DOCKER_NODE_RECIPE, NODE_INIT_PATH, nodeImageTag, type NodeRecipe } from './node-recipe.js';

export interface NodeImage {
  tag: string;
  /** The cached rootfs tarball it was imported from. */
  tarball: string;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

async function imageExists(tag: string): Promise<boolean> {
  const result = await execa('docker', ['image', 'inspect', '--format', '{{.Id}}', tag], { reject: false });
  return result.exitCode === 0;
}

export function nodeTarballPath(cacheDir = deplCacheDir(), recipe: NodeRecipe = DOCKER_NODE_RECIPE): string {
  return path.join(cacheDir, `${recipe.tarballPrefix}-${recipe.hash}.tar.gz`);
}

/**
 * The image local nodes run, built offline from Debian packages (no registry is needed or reachable).
 * Cached twice: as a rootfs tarball under the cache folder (survives `docker system prune`), and as the
 * imported image. Building takes about a minute, so it happens once per machine, under a lock so that
 * concurrent node-ups and test files wait for one build instead of racing.
 */
export async function ensureNodeImage(log: Logger, cacheDir = deplCacheDir(), recipe: NodeRecipe = DOCKER_NODE_RECIPE): Promise<NodeImage> {
  const tag = nodeImageTag(recipe);
  const tarball = nodeTarballPath(cacheDir, recipe);
  if (await imageExists(tag)) return { tag, tarball };
  return withFileLock(path.join(cacheDir, `node-image-${recipe.hash}.lock`), `node image (${recipe.kind})`, log, async () => {
    if (await imageExists(tag)) return { tag, tarball };
    if (!(await exists(tarball))) await buildRootfsTarball(tarball, cacheDir, recipe, log);
    log.step(`importing node image ${tag}`);
    const entrypoint = JSON.stringify(['/usr/bin/tini', '--', NODE_INIT_PATH]);
    const result = await execa('docker', ['import', '-c', `ENTRYPOINT ${entrypoint}`, '-m', 'depl local node', tarball, tag], { reject: false, all: true });
    if (result.exitCode !== 0) {
      throw new OperationError(`docker import of ${tarball} failed: ${String(result.all).trim()}`, `Delete ${tarball} to rebuild it.`, 'NODE_IMAGE_IMPORT');
    }
    await removeOlderImages(tag);
    return { tag, tarball };
  });
}

/** Node images of older recipes; one still used by a node container is kept (docker refuses without -f). */
async function removeOlderImages(current: string): Promise<void> {
  const [repository] = current.split(':');
  const listed = await execa('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}', repository!], { reject: false });
  for (const tag of String(listed.stdout).split('\n').filter((t) => t.length > 0 && t !== current)) {
    await execa('docker', ['rmi', tag], { reject: false });
  }
}

async function buildRootfsTarball(tarball: string, cacheDir: string, recipe: NodeRecipe, log: Logger): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new OperationError('building the local node image needs root (debootstrap)', 'Run depl node-up as root once, or on a machine where the node image is cached.', 'NODE_IMAGE_ROOT');
  }
  await ensureDebianPackages(['debootstrap'], log);
  await mkdir(cacheDir, { recursive: true });
  // we hold the build lock, so any build folder or partial tarball is left over from a build that was killed
  for (const name of await readdir(cacheDir)) {
    if (/^build-/.test(name) || /^node-(cloud-)?rootfs-.*\.partial-\d+$/.test(name)) await rm(path.join(cacheDir, name), { recursive: true, force: true });
  }
  const work = await mkdtemp(path.join(cacheDir, 'build-'));
  const rootfs = path.join(work, 'rootfs');
  const started = Date.now();
  try {
    log.step(`building the local node image (${recipe.kind}) with debootstrap (${recipe.suite}, once per machine, about a minute)`);
    const mirror = await hostDebianMirror();
    const args = ['--variant=minbase', `--include=${recipe.packages.join(',')}`, recipe.suite, rootfs, ...(mirror ? [mirror] : [])];
    const boot = await execa('debootstrap', args, { reject: false, all: true });
    if (boot.exitCode !== 0) {
      const tail = String(boot.all).split('\n').slice(-15).join('\n');
      throw new OperationError(`debootstrap failed (exit ${boot.exitCode}):\n${tail}`, 'Check that this machine reaches its Debian mirror (apt-get update works).', 'NODE_IMAGE_BUILD');
    }
    await customiseRootfs(rootfs, recipe);
    const partial = `${tarball}.partial-${process.pid}`;
    const pack = await execa('sh', ['-c', 'tar -C "$1" --numeric-owner -c . | gzip -1 > "$2"', 'sh', rootfs, partial], { reject: false, all: true });
    if (pack.exitCode !== 0) {
      await rm(partial, { force: true });
      throw new OperationError(`packing the node rootfs failed: ${String(pack.all).trim()}`, undefined, 'NODE_IMAGE_BUILD');
    }
    await rename(partial, tarball);
    await removeOtherTarballs(tarball, cacheDir, recipe);
    log.step(`node image built in ${Math.round((Date.now() - started) / 1000)} s, cached at ${tarball}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Tarballs of older recipes are dead weight (~150 MB each): the recipe hash in the name says which. */
async function removeOtherTarballs(keep: string, cacheDir: string, recipe: NodeRecipe): Promise<void> {
  const same = new RegExp(`^${recipe.tarballPrefix}-[0-9a-f]{12}\\.tar\\.gz$`);
  for (const name of await readdir(cacheDir)) {
    if (same.test(name) && path.join(cacheDir, name) !== keep) {
      await rm(path.join(cacheDir, name), { force: true });
    }
  }
}

async function customiseRootfs(rootfs: string, recipe: NodeRecipe): Promise<void> {
  const at = (p: string) => path.join(rootfs, p);
  // host keys are made per node at first boot; none may be shared through the cached image
  await execa('sh', ['-c', 'rm -f "$1"/etc/ssh/ssh_host_*', 'sh', rootfs]);
  await writeFile(at(NODE_INIT_PATH), recipe.initScript);
  await chmod(at(NODE_INIT_PATH), 0o755);
  for (const file of recipe.files) {
    await mkdir(path.dirname(at(file.path)), { recursive: true });
    await writeFile(at(file.path), file.content);
    await chmod(at(file.path), file.mode);
  }
  for (const argv of recipe.chrootCommands) {
    const result = await execa('chroot', [rootfs, ...argv], { reject: false, all: true });
    if (result.exitCode !== 0) {
      throw new OperationError(`building the node image: \`${argv.join(' ')}\` failed: ${String(result.all).trim()}`, undefined, 'NODE_IMAGE_BUILD');
    }
  }
  const initd = at('etc/init.d/docker');
  if (recipe.tolerateDockerUlimit && (await exists(initd))) {
    const text = await readFile(initd, 'utf8');
    await writeFile(initd, text.replace(/^(\s*ulimit -[npu] [0-9a-z]+)\s*$/gm, '$1 || true'));
  }
  await rm(at('var/cache/apt/archives'), { recursive: true, force: true });
  await mkdir(at('var/cache/apt/archives/partial'), { recursive: true });
  await rm(at('var/lib/apt/lists'), { recursive: true, force: true });
  await mkdir(at('var/lib/apt/lists/partial'), { recursive: true });
}
