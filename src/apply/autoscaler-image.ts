import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OperationError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { packagePath } from '../util/paths.js';
import { readBuildContext } from './build-context.js';
import type { Engine } from './docker.js';

/** The controller bundled by `npm run build` (scripts/bundle-autoscaler.mjs). */
export const AUTOSCALER_BUNDLE = packagePath('dist', 'autoscaler', 'autoscaler.mjs');

/**
 * The autoscale controller's image on the manager (the only node it runs on): the node base image plus the
 * bundled controller, tagged by the hash of the bundle, the Dockerfile and the base, and built only when that
 * tag is missing there, so an unchanged depl builds it once per cluster (a few seconds, no network).
 */
export async function ensureAutoscalerImage(engine: Engine, nodeImage: string, log: Logger): Promise<string> {
  const bundle = await readFile(AUTOSCALER_BUNDLE).catch(() => null);
  if (bundle === null) {
    throw new OperationError(`the autoscale controller is not built (no ${AUTOSCALER_BUNDLE})`, 'Run `npm run build` in depl\'s folder.', 'AUTOSCALER_NOT_BUILT');
  }
  const dockerfile = packagePath('templates', 'autoscaler.Dockerfile');
  const hash = createHash('sha256').update(bundle).update(await readFile(dockerfile)).update(nodeImage).digest('hex').slice(0, 12);
  const tag = `depl-autoscaler:${hash}`;
  if (await engine.imageId(tag)) return tag;
  log.step(`building the autoscale controller image ${tag} on ${engine.name}`);
  const context = await mkdtemp(path.join(os.tmpdir(), 'depl-autoscaler-'));
  try {
    await copyFile(AUTOSCALER_BUNDLE, path.join(context, 'autoscaler.mjs'));
    await engine.build({ context: await readBuildContext(context, { label: 'the autoscaler image' }), dockerfile, tag, args: { NODE_IMAGE: nodeImage } }, log);
  } finally {
    await rm(context, { recursive: true, force: true });
  }
  return tag;
}
