import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ensureBaseTarballs } from '../../src/apply/base-images.js';
import { contextFiles } from '../../src/apply/build-context.js';
import { managerEngine, type Engine } from '../../src/apply/docker.js';
import { deplCacheDir } from '../../src/apply/local/cache-dir.js';
import { packagePath } from '../../src/util/paths.js';
import { silentLogger, type Logger } from '../../src/util/log.js';
import { repoRoot } from './cli.js';
import type { TestCluster } from './cluster.js';

/**
 * The crawler's Docker build cache, carried from one test cluster's manager to the next. Every test cluster has
 * a fresh engine, so each file that deploys the crawler paid the whole build (its `npm ci` and `tsc`, about a
 * minute) before its first case. The first such file on a machine leaves, after its build, the offline node base
 * image and every image built on it (the build's intermediate images, with their parent links) in one
 * `docker save` archive under the tests' own cache folder (`docker load` keeps those links, which the classic
 * builder's cache follows); the next clusters get it with `docker load` before their first buildinst. buildinst itself is unchanged and builds as it always does: the engine's classic builder
 * finds its steps cached only where their inputs are the same (the base image's id, the instruction, the
 * checksum of the files a COPY sends), so a changed lockfile or source rebuilds from that step, as a user's
 * second buildinst on the same manager would. `depl demo` (demo.test.ts) builds on a cluster of its own and
 * keeps showing the build from nothing; so does the first crawler file of a fresh machine (CI).
 */
const CRAWLER_DOCKERFILE = packagePath('templates', 'crawler.Dockerfile');

/** The tests' own folder in depl's cache folder: nothing depl itself reads. */
export function buildCacheDir(): string {
  return path.join(deplCacheDir(), 'test-build-cache');
}

/**
 * Names the archive by what the crawler's build reads (the node base image's tag, the Dockerfile, the root
 * manifests and lockfile, the crawler's package): a change saves a new archive once. The name only decides
 * when to save again; whether a step is reused is the engine's decision, by the inputs themselves.
 */
async function archiveFile(log: Logger): Promise<{ file: string; baseTag: string }> {
  const { tags } = await ensureBaseTarballs(log);
  const hash = createHash('sha256').update(tags.node).update('\0').update(await readFile(CRAWLER_DOCKERFILE));
  const files = (await contextFiles(repoRoot)).filter((f) => f === 'package.json' || f === 'package-lock.json' || f.startsWith('crawler/')).sort();
  for (const file of files) hash.update('\0').update(file).update('\0').update(await readFile(path.join(repoRoot, file)));
  return { file: path.join(buildCacheDir(), `crawler-build-${hash.digest('hex').slice(0, 16)}.tar`), baseTag: tags.node };
}

function follow(engine: Engine, stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed: string | undefined;
    engine.docker.modem.followProgress(stream, (error: Error | null) => {
      if (error || failed) reject(error ?? new Error(failed));
      else resolve();
    }, (event: { error?: string }) => {
      failed ??= event.error;
    });
  });
}

/**
 * Loads an archive into the cluster's manager: this tree's, else the newest one kept (an earlier tree's: its base
 * image and dependency steps still serve when the lockfile is the same; the engine reuses no step whose inputs
 * differ). Says what it did on stderr (the figure CI's log keeps). Without any archive it does nothing: the build
 * then runs from nothing.
 */
export async function seedCrawlerBuildCache(tc: TestCluster, log: Logger = silentLogger): Promise<boolean> {
  const { file: exact } = await archiveFile(log);
  const kept = await readdir(buildCacheDir()).catch(() => [] as string[]);
  const candidates = await Promise.all(kept.filter((f) => /^crawler-build-[0-9a-f]+\.tar$/.test(f)).map(async (f) => {
    const info = await stat(path.join(buildCacheDir(), f));
    return { file: path.join(buildCacheDir(), f), size: info.size, mtimeMs: info.mtimeMs };
  }));
  const chosen = candidates.find((c) => c.file === exact) ?? candidates.sort((a, b) => b.mtimeMs - a.mtimeMs)[0];
  if (chosen === undefined) {
    process.stderr.write(`crawler build cache: none kept yet; ${tc.cluster.managerNode.name} builds from nothing\n`);
    return false;
  }
  const started = Date.now();
  const engine = await managerEngine(tc.cluster);
  try {
    await follow(engine, await engine.docker.loadImage(createReadStream(chosen.file), { quiet: true }));
  } finally {
    await engine.close();
  }
  const which = chosen.file === exact ? 'this tree\'s' : `an earlier tree's (this one's is ${path.basename(exact)})`;
  process.stderr.write(`crawler build cache: ${which} ${path.basename(chosen.file)} (${(chosen.size / 2 ** 20).toFixed(0)} MiB) loaded into ${tc.cluster.managerNode.name} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return true;
}

/**
 * After a file's builds, saves the manager's node base image and every image built on it, unless an archive for
 * this tree is there already. Only once the crawler's image was built (`<app>/api:*` tagged): a cluster whose
 * build failed leaves no archive. Older archives are removed: one tree's is enough.
 */
export async function keepCrawlerBuildCache(tc: TestCluster, log: Logger = silentLogger): Promise<void> {
  const { file, baseTag } = await archiveFile(log);
  if (await stat(file).then(() => true, () => false)) return;
  const started = Date.now();
  const engine = await managerEngine(tc.cluster);
  try {
    const images = await engine.docker.listImages({ all: true });
    const base = images.find((i) => (i.RepoTags ?? []).includes(baseTag));
    const built = images.some((i) => (i.RepoTags ?? []).some((t) => t.startsWith(`${tc.loaded.config.app}/api:`)));
    if (base === undefined || !built) return;
    const parent = new Map(images.map((i) => [i.Id, i.ParentId]));
    const descendsFromBase = (id: string): boolean => {
      for (let at: string | undefined = parent.get(id); at; at = parent.get(at)) if (at === base.Id) return true;
      return false;
    };
    // by id: the archive carries no tag but the base image's, so buildinst on the next cluster tags its own build
    const names = [baseTag, ...images.filter((i) => descendsFromBase(i.Id)).map((i) => i.Id)];
    await mkdir(buildCacheDir(), { recursive: true });
    const temp = `${file}.tmp-${process.pid}`;
    try {
      // (dockerode has getImages, GET /images/get with several names, but its types leave it out)
      const saver = engine.docker as unknown as { getImages(options: { names: string[] }): Promise<NodeJS.ReadableStream> };
      await pipeline(await saver.getImages({ names }), createWriteStream(temp));
      await rename(temp, file);
    } finally {
      await rm(temp, { force: true });
    }
    for (const old of await readdir(buildCacheDir())) {
      if (old.startsWith('crawler-build-') && old !== path.basename(file)) await rm(path.join(buildCacheDir(), old), { force: true });
    }
    const size = (await stat(file)).size;
    process.stderr.write(`crawler build cache: saved ${names.length} images from ${tc.cluster.managerNode.name} as ${path.basename(file)} (${(size / 2 ** 20).toFixed(0)} MiB) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  } finally {
    await engine.close();
  }
}
