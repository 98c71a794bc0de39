import { PassThrough } from 'node:stream';
import { OperationError } from '../errors.js';
import { parseNodeImageState, planDistribution } from '../plan/distribute.js';
import type { Logger } from '../util/log.js';
import type { Cluster, ClusterNode } from './cluster.js';
import type { Engine } from './docker.js';
import type { Remote } from './remote.js';

/**
 * Gets images built on the manager onto the nodes that run them, as src/plan/distribute.ts plans it: with a
 * registry, push once; without one, ask each node in one command whether it has the image (or the same id,
 * which it then tags), and stream one `docker save` on the manager, teed, into `docker load` on the others.
 */
export interface DistributionResult {
  image: string;
  loaded: string[];
  tagged: string[];
  skipped: string[];
  pushed?: boolean;
}

export async function distributeImage(cluster: Cluster, manager: Engine, image: string, nodes: ClusterNode[], log: Logger, registry?: string): Promise<DistributionResult> {
  const id = await manager.imageId(image);
  if (!id) throw new OperationError(`${manager.name} has no image ${image} to distribute`, undefined, 'IMAGE_MISSING');
  const plan = planDistribution({ image, id, nodes: nodes.map((n) => n.name), manager: cluster.managerNode.name, ...(registry !== undefined ? { registry } : {}) });
  const result: DistributionResult = { image, loaded: [], tagged: [], skipped: [] };
  if (plan.mode === 'registry') {
    await pushImage(manager, image, log);
    result.pushed = true;
    return result;
  }
  const needLoad: { name: string; remote: Remote }[] = [];
  await Promise.all(plan.nodes.map(async (node) => {
    const remote = await cluster.remote(node.name);
    const checked = await remote.exec(node.check, { check: false });
    const state = parseNodeImageState(checked.stdout);
    if (checked.code !== 0 || state === null) {
      throw new OperationError(`${node.name}: cannot tell whether it has ${image}: ${(checked.stderr || checked.stdout).trim().split('\n').slice(-3).join(' ')}`, 'Check that Docker runs on the node (depl status).', 'IMAGE_CHECK_FAILED');
    }
    if (state === 'missing') needLoad.push({ name: node.name, remote });
    else result[state].push(node.name);
  }));
  if (needLoad.length > 0) {
    log.step(`sending ${image} to ${needLoad.map((n) => n.name).join(', ')} (docker save | ssh docker load)`);
    const source = await manager.save(image);
    const branches = needLoad.map(() => new PassThrough({ highWaterMark: 1 << 20 }));
    source.on('error', (error) => branches.forEach((b) => b.destroy(error as Error)));
    for (const branch of branches) source.pipe(branch);
    await Promise.all(needLoad.map(async ({ name, remote }, i) => {
      const loaded = await remote.exec(plan.load, { stdin: branches[i]!, check: false, timeoutMs: 15 * 60_000 });
      if (loaded.code !== 0) {
        throw new OperationError(`${name}: docker load of ${image} failed: ${loaded.stderr.trim().split('\n').slice(-3).join(' ')}`, 'Check free disk space on the node (docker system df).', 'IMAGE_LOAD_FAILED');
      }
      result.loaded.push(name);
    }));
  }
  for (const list of [result.loaded, result.tagged, result.skipped]) list.sort();
  return result;
}

async function pushImage(manager: Engine, image: string, log: Logger): Promise<void> {
  log.step(`pushing ${image}`);
  const stream = await manager.docker.getImage(image).push({}).catch((error: Error) => {
    throw new OperationError(`${manager.name}: cannot push ${image}: ${error.message}`, 'Check registry.url in depl.yaml and that the manager can reach it.', 'IMAGE_PUSH_FAILED');
  });
  await new Promise<void>((resolve, reject) => {
    manager.docker.modem.followProgress(stream, (error: Error | null, events: Array<{ error?: string }>) => {
      const failed = error?.message ?? events.find((e) => e.error)?.error;
      if (failed) reject(new OperationError(`${manager.name}: push of ${image} failed: ${failed}`, 'Check registry.url in depl.yaml and that the manager can reach it.', 'IMAGE_PUSH_FAILED'));
      else resolve();
    });
  });
}
