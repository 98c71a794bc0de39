import { PassThrough } from 'node:stream';
import { OperationError } from '../errors.js';
import type { Logger } from '../util/log.js';
import type { Cluster, ClusterNode } from './cluster.js';
import type { Engine } from './docker.js';
import type { Remote } from './remote.js';

/**
 * Gets images built on the manager onto the nodes that run them. With a registry: push once, and every
 * node pulls what its tasks need. Without one: `docker save` on the manager, streamed over SSH into
 * `docker load` on each node that lacks the image (one save, teed to all of them at once). A node that has
 * the image id already (an unchanged tree built again) only gets the new tag.
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
  const result: DistributionResult = { image, loaded: [], tagged: [], skipped: [] };
  if (registry !== undefined) {
    await pushImage(manager, image, log);
    result.pushed = true;
    return result;
  }
  const targets = nodes.filter((n) => n.name !== cluster.managerNode.name);
  const needLoad: { node: ClusterNode; remote: Remote }[] = [];
  await Promise.all(targets.map(async (node) => {
    const remote = await cluster.remote(node.name);
    const tagged = await remote.exec(['docker', 'image', 'inspect', '--format', '{{.Id}}', image], { check: false });
    if (tagged.code === 0 && tagged.stdout.trim() === id) {
      result.skipped.push(node.name);
      return;
    }
    const present = await remote.exec(['docker', 'image', 'inspect', '--format', '{{.Id}}', id], { check: false });
    if (present.code === 0) {
      await remote.exec(['docker', 'tag', id, image]);
      result.tagged.push(node.name);
      return;
    }
    needLoad.push({ node, remote });
  }));
  if (needLoad.length > 0) {
    log.step(`sending ${image} to ${needLoad.map((n) => n.node.name).join(', ')} (docker save | ssh docker load)`);
    const source = await manager.save(image);
    const branches = needLoad.map(() => new PassThrough({ highWaterMark: 1 << 20 }));
    source.on('error', (error) => branches.forEach((b) => b.destroy(error as Error)));
    for (const branch of branches) source.pipe(branch);
    await Promise.all(needLoad.map(async ({ node, remote }, i) => {
      const loaded = await remote.exec(['docker', 'load', '--quiet'], { stdin: branches[i]!, check: false, timeoutMs: 15 * 60_000 });
      if (loaded.code !== 0) {
        throw new OperationError(`${node.name}: docker load of ${image} failed: ${loaded.stderr.trim().split('\n').slice(-3).join(' ')}`, 'Check free disk space on the node (docker system df).', 'IMAGE_LOAD_FAILED');
      }
      result.loaded.push(node.name);
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
