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
/** The engine gate (src/engine-gate/main.ts, scripts/bundle-cli.mjs): the same program the renewal task's gate runs. */
export const ENGINE_GATE_BUNDLE = packagePath('dist', 'engine-gate.mjs');

/**
 * The autoscale controller's image on the manager (the only node it runs on): the node base image plus the
 * bundled controller and the bundled engine gate (its version's `-autoscaler-gate` service runs the same image),
 * tagged by the hash of the bundles, the Dockerfile and the base, and built only when that tag is missing there,
 * so an unchanged depl builds it once per cluster (a few seconds, no network).
 */
export async function ensureAutoscalerImage(engine: Engine, nodeImage: string, log: Logger): Promise<string> {
  const read = async (file: string) => readFile(file).catch(() => {
    throw new OperationError(`the autoscale controller is not built (no ${file})`, 'Run `npm run build` in depl\'s folder.', 'AUTOSCALER_NOT_BUILT');
  });
  const [bundle, gate] = await Promise.all([read(AUTOSCALER_BUNDLE), read(ENGINE_GATE_BUNDLE)]);
  const dockerfile = packagePath('templates', 'autoscaler.Dockerfile');
  const hash = createHash('sha256').update(bundle).update(gate).update(await readFile(dockerfile)).update(nodeImage).digest('hex').slice(0, 12);
  const tag = `depl-autoscaler:${hash}`;
  if (await engine.imageId(tag)) return tag;
  log.step(`building the autoscale controller image ${tag} on ${engine.name}`);
  const context = await mkdtemp(path.join(os.tmpdir(), 'depl-autoscaler-'));
  try {
    await copyFile(AUTOSCALER_BUNDLE, path.join(context, 'autoscaler.mjs'));
    await copyFile(ENGINE_GATE_BUNDLE, path.join(context, 'engine-gate.mjs'));
    await engine.build({ context: await readBuildContext(context, { label: 'the autoscaler image' }), dockerfile, tag, args: { NODE_IMAGE: nodeImage } }, log);
  } finally {
    await rm(context, { recursive: true, force: true });
  }
  return tag;
}
