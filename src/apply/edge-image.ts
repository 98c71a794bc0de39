import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { packagePath } from '../util/paths.js';
import { ensureBaseImages } from './base-images.js';
import { readBuildContext } from './build-context.js';
import type { Engine } from './docker.js';

/**
 * The edge needs nginx with Debian's Lua module (src/plan/edge-lua.ts); a stock nginx image has none. Unless
 * depl.yaml names its own (`images.nginx`), the edge runs depl's edge image, on the manager (the edge node):
 * - nodes that cannot pull (the local provider): the offline base image, debootstrapped from Debian packages;
 * - nodes that can (a registry, Nectar): templates/edge.Dockerfile built on the manager, from the same
 *   Debian packages, tagged by the Dockerfile's hash and built only when that tag is missing.
 */
export async function ensureEdgeImage(engine: Engine, offline: boolean, log: Logger): Promise<string> {
  if (offline) return (await ensureBaseImages(engine, log)).nginx;
  const dockerfile = packagePath('templates', 'edge.Dockerfile');
  const tag = `depl-edge:${createHash('sha256').update(await readFile(dockerfile)).digest('hex').slice(0, 12)}`;
  if (await engine.imageId(tag)) return tag;
  log.step(`building the edge image ${tag} on ${engine.name} (nginx with its Lua module, from Debian)`);
  const context = await mkdtemp(path.join(os.tmpdir(), 'depl-edge-image-'));
  try {
    await engine.build({ context: await readBuildContext(context, { label: 'the edge image' }), dockerfile, tag, args: {} }, log);
  } finally {
    await rm(context, { recursive: true, force: true });
  }
  return tag;
}
