import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, chmod, cp, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { OperationError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { hostDebianMirror } from './host/debian-mirror.js';
import { ensureDebianPackages } from './host/packages.js';
import { deplCacheDir } from './local/cache-dir.js';
import { withFileLock } from './local/file-lock.js';
import type { Engine } from './docker.js';

/**
 * Base images for clusters that cannot pull from a registry (the local provider, and the tests): made
 * offline from Debian packages with debootstrap, plus this machine's Node 20 (Debian 12's nodejs is 18).
 * One minbase rootfs with nginx-light, redis-server and tini serves all three; the node image adds node and
 * npm. The rootfs tarballs are cached under the depl cache folder; each image is imported into the manager's
 * engine once, under a tag that carries the recipe hash, so a changed recipe makes a new image.
 */
export type BaseImageKind = 'node' | 'nginx' | 'redis';
export type BaseImages = Record<BaseImageKind, string>;

const SUITE = 'bookworm';
// The edge's nginx routes at request time with Debian's Lua module (see src/plan/edge-lua.ts);
// templates/edge.Dockerfile installs the same EDGE_PACKAGES where nodes can pull.
export const EDGE_PACKAGES = ['nginx-light', 'libnginx-mod-http-lua'];
const PACKAGES = [...EDGE_PACKAGES, 'redis-server', 'tini'];
// The node running depl (>= 20.19 by package.json) and the npm installed beside it.
const NODE_BINARY = process.execPath;
const NPM_DIR = path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'npm');

// Debian's redis listens with protected mode on, which refuses every client from another container; the
// official image turns it off the same way. Data goes to the volume at /data.
const REDIS_ENTRYPOINT = `#!/bin/sh
set -e
case "$1" in
  -v|--version) exec redis-server "$@" ;;
esac
if [ "\${1#-}" != "$1" ] || [ "$1" = redis-server ]; then
  [ "$1" = redis-server ] && shift
  exec redis-server --protected-mode no --dir /data "$@"
fi
exec "$@"
`;

/**
 * The CA bundle of this machine goes into the node image, and node trusts it: behind a TLS-inspecting proxy
 * (as in CI sandboxes and many companies) npm and the crawler then reach what this machine reaches.
 */
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** Image metadata each kind is imported with (`docker import --change`). */
const CHANGES: Record<BaseImageKind, string[]> = {
  node: ['ENV NODE_ENV=production', `ENV NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`, 'WORKDIR /app', 'ENTRYPOINT ["/usr/bin/tini", "--"]', 'CMD ["node"]'],
  // (docker import accepts no STOPSIGNAL: the edge service sets --stop-signal SIGQUIT itself)
  nginx: ['EXPOSE 80', 'CMD ["nginx", "-g", "daemon off;"]'],
  redis: ['WORKDIR /data', 'EXPOSE 6379', 'ENTRYPOINT ["/usr/local/bin/depl-redis-entrypoint"]', 'CMD ["redis-server"]'],
};

async function nodeVersion(): Promise<string> {
  const result = await execa(NODE_BINARY, ['--version'], { reject: false });
  const version = String(result.stdout).trim().replace(/^v/, '');
  if (result.exitCode !== 0 || !/^\d+\.\d+\.\d+$/.test(version)) {
    throw new OperationError(`cannot run ${NODE_BINARY} to put it into the node base image`, 'Install Node 20 (>= 20.19) on this machine: the offline node image copies it.', 'BASE_IMAGE_NODE');
  }
  if (Number(version.split('.')[0]) < 20) {
    throw new OperationError(`${NODE_BINARY} is Node ${version}; the crawler needs Node >= 20.19`, 'Install Node 20 from nodesource or nodejs.org.', 'BASE_IMAGE_NODE');
  }
  return version;
}

const shortHash = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 10);

/** What the debootstrapped rootfs depends on: a change rebuilds it (about a minute). */
export function baseRecipeHash(): string {
  return shortHash({ SUITE, PACKAGES, REDIS_ENTRYPOINT, rev: 2 });
}

/** Tags carry the tarball's recipe and the image metadata, so either changing makes a new image. */
export function baseImageTags(baseHash: string, nodeHash: string, nodeVersionText: string): BaseImages {
  const tag = (kind: BaseImageKind, hash: string) => shortHash({ hash, changes: CHANGES[kind] });
  return {
    node: `depl-base/node:${nodeVersionText}-${tag('node', nodeHash)}`,
    nginx: `depl-base/nginx:${tag('nginx', baseHash)}`,
    redis: `depl-base/redis:${tag('redis', baseHash)}`,
  };
}

interface Tarballs {
  base: string;
  node: string;
}

/** The cached rootfs tarballs, built when missing: debootstrap once per machine, node on top in seconds. */
export async function ensureBaseTarballs(log: Logger, cacheDir = deplCacheDir()): Promise<{ tarballs: Tarballs; tags: BaseImages }> {
  const version = await nodeVersion();
  const caBundle = await readFile(CA_BUNDLE).catch(() => Buffer.alloc(0));
  const baseHash = baseRecipeHash();
  if (!(await exists(path.join(NPM_DIR, 'bin', 'npm-cli.js')))) {
    throw new OperationError(`no npm at ${NPM_DIR} (beside ${NODE_BINARY})`, 'Install Node 20 with its npm (nodesource or nodejs.org builds include it).', 'BASE_IMAGE_NODE');
  }
  const nodeHash = shortHash({ baseHash, version, ca: createHash('sha256').update(caBundle).digest('hex'), rev: 1 });
  const tarballs: Tarballs = {
    base: path.join(cacheDir, `base-rootfs-${baseHash}.tar.gz`),
    node: path.join(cacheDir, `base-node-rootfs-${nodeHash}.tar.gz`),
  };
  if (!(await exists(tarballs.base))) {
    await withFileLock(path.join(cacheDir, `base-rootfs-${baseHash}.lock`), 'offline base images', log, async () => {
      if (!(await exists(tarballs.base))) await buildBaseTarball(tarballs.base, cacheDir, log);
    });
  }
  if (!(await exists(tarballs.node))) {
    await withFileLock(path.join(cacheDir, `base-node-rootfs-${nodeHash}.lock`), 'offline node image', log, async () => {
      if (!(await exists(tarballs.node))) await buildNodeTarball(tarballs.base, tarballs.node, caBundle, cacheDir);
    });
  }
  return { tarballs, tags: baseImageTags(baseHash, nodeHash, version) };
}

/**
 * Makes the offline base images exist in the engine (the manager's): imported from the cached tarballs,
 * streamed over the engine connection, only when the tag is missing there.
 */
export async function ensureBaseImages(engine: Engine, log: Logger, cacheDir = deplCacheDir()): Promise<BaseImages> {
  const { tarballs, tags } = await ensureBaseTarballs(log, cacheDir);
  for (const kind of ['node', 'nginx', 'redis'] as const) {
    if (await engine.imageId(tags[kind])) continue;
    log.step(`importing the offline ${kind} base image ${tags[kind]} into ${engine.name}`);
    await engine.importTarball(kind === 'node' ? tarballs.node : tarballs.base, tags[kind], CHANGES[kind]);
  }
  return tags;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

async function buildBaseTarball(target: string, cacheDir: string, log: Logger): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new OperationError('building the offline base images needs root (debootstrap)', 'Run it once as root, or set images: in depl.yaml to images your nodes can pull.', 'BASE_IMAGE_ROOT');
  }
  await ensureDebianPackages(['debootstrap'], log);
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(path.join(cacheDir, 'base-build-'));
  const rootfs = path.join(work, 'rootfs');
  const started = Date.now();
  try {
    log.step(`building offline base images with debootstrap (${SUITE} minbase + ${PACKAGES.join(', ')}; once per machine, 1-2 minutes)`);
    const mirror = await hostDebianMirror();
    const boot = await execa('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, SUITE, rootfs, ...(mirror ? [mirror] : [])], { reject: false, all: true });
    if (boot.exitCode !== 0) {
      throw new OperationError(`debootstrap failed (exit ${boot.exitCode}):\n${String(boot.all).split('\n').slice(-15).join('\n')}`, 'Check that this machine reaches its Debian mirror (apt-get update works).', 'BASE_IMAGE_BUILD');
    }
    await trimRootfs(rootfs);
    for (const dir of ['data', 'app', 'var/log/nginx', 'var/log/redis']) await mkdir(path.join(rootfs, dir), { recursive: true });
    await rm(path.join(rootfs, 'etc/nginx/sites-enabled/default'), { force: true });
    const entrypoint = path.join(rootfs, 'usr/local/bin/depl-redis-entrypoint');
    await writeFile(entrypoint, REDIS_ENTRYPOINT);
    await chmod(entrypoint, 0o755);
    await tarRootfs(rootfs, target);
    log.info(`offline base rootfs built in ${Math.round((Date.now() - started) / 1000)} s (cached in ${cacheDir})`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The base rootfs plus this machine's node and npm, and its CA bundle. */
async function buildNodeTarball(base: string, target: string, caBundle: Buffer, cacheDir: string): Promise<void> {
  const work = await mkdtemp(path.join(cacheDir, 'node-build-'));
  const rootfs = path.join(work, 'rootfs');
  try {
    await mkdir(rootfs);
    const untar = await execa('tar', ['-C', rootfs, '--numeric-owner', '-xzf', base], { reject: false, all: true });
    if (untar.exitCode !== 0) throw new OperationError(`cannot unpack ${base}: ${String(untar.all).trim()}`, `Delete ${base} to rebuild it.`, 'BASE_IMAGE_BUILD');
    await cp(NODE_BINARY, path.join(rootfs, 'usr/local/bin/node'));
    await cp(NPM_DIR, path.join(rootfs, 'usr/local/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
    await symlink('../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/local/bin/npm'));
    await symlink('../lib/node_modules/npm/bin/npx-cli.js', path.join(rootfs, 'usr/local/bin/npx'));
    await mkdir(path.join(rootfs, path.dirname(CA_BUNDLE)), { recursive: true });
    await writeFile(path.join(rootfs, CA_BUNDLE), caBundle);
    await tarRootfs(rootfs, target);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Documentation, manuals, locales and apt's lists are not needed to run anything. */
async function trimRootfs(rootfs: string): Promise<void> {
  for (const dir of ['usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale', 'var/lib/apt/lists', 'var/cache/apt', 'var/cache/debconf', 'var/log']) {
    await rm(path.join(rootfs, dir), { recursive: true, force: true });
  }
  for (const dir of ['var/lib/apt/lists/partial', 'var/cache/apt/archives/partial', 'var/cache/debconf', 'var/log']) {
    await mkdir(path.join(rootfs, dir), { recursive: true });
  }
}

async function tarRootfs(rootfs: string, target: string): Promise<void> {
  const temp = `${target}.tmp-${process.pid}`;
  const result = await execa('tar', ['-C', rootfs, '--numeric-owner', '-I', 'gzip -1', '-cf', temp, '.'], { reject: false, all: true });
  if (result.exitCode !== 0) throw new OperationError(`tar of ${rootfs} failed: ${String(result.all).trim()}`, undefined, 'BASE_IMAGE_BUILD');
  await rename(temp, target);
}

export function tarballStream(file: string): NodeJS.ReadableStream {
  return createReadStream(file);
}
