import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { importBusyboxImage } from './busybox-image.js';
import { loadImageOnNodes, startTestCluster, type TestCluster, type TestClusterOptions } from './cluster.js';
import { importNginxImage } from './nginx-image.js';

const docker = new Docker({ socketPath: process.env.DOCKER_HOST?.replace(/^unix:\/\//, '') || '/var/run/docker.sock' });

/**
 * The offline test images of one test file, under tags of its own: busybox (versions, jobs, accessories) and
 * nginx with the Lua module (the edge). Unique per run, so an aborted earlier run's images are never in the way.
 */
export interface TestImages {
  suffix: string;
  busybox: string;
  nginx: string;
}

export function testImages(): TestImages {
  const suffix = randomBytes(4).toString('hex');
  return { suffix, busybox: `depl-test-busybox:${suffix}`, nginx: `depl-test-nginx:${suffix}` };
}

/**
 * Makes the images on this machine's engine; `remove()` deletes them again (by tag). `edgeShell`: the nginx image
 * also has the shell tools the renewal task runs in the edge (a cluster where the task reloads it).
 */
export async function makeTestImages(images: TestImages, which: ReadonlyArray<'busybox' | 'nginx'>, options: { edgeShell?: boolean } = {}): Promise<{ tags: string[]; remove(): Promise<void> }> {
  const tags = which.map((w) => images[w]);
  const remove = async () => {
    for (const tag of tags) await docker.getImage(tag).remove({ force: true }).catch(() => {});
  };
  const made = await Promise.allSettled(which.map((w) => (w === 'busybox' ? importBusyboxImage(images.busybox) : importNginxImage(images.nginx, undefined, { shell: options.edgeShell === true }))));
  const failed = made.find((m): m is PromiseRejectedResult => m.status === 'rejected');
  if (failed !== undefined) {
    await remove();
    throw failed.reason;
  }
  return { tags, remove };
}

/**
 * A local cluster with the test images on every node: the nodes boot while the images are made, then each image
 * is loaded on them. `stop()` removes the cluster, then the images; a failure on the way removes what was made.
 */
export async function startClusterWithImages(images: TestImages, which: ReadonlyArray<'busybox' | 'nginx'>, options: TestClusterOptions): Promise<TestCluster> {
  const [started, made] = await Promise.allSettled([startTestCluster(options), makeTestImages(images, which)]);
  if (started.status === 'rejected' || made.status === 'rejected') {
    if (started.status === 'fulfilled') await started.value.stop();
    if (made.status === 'fulfilled') await made.value.remove();
    throw started.status === 'rejected' ? started.reason : (made as PromiseRejectedResult).reason;
  }
  const tc = started.value;
  const stop = async () => {
    await tc.stop();
    await made.value.remove();
  };
  try {
    await Promise.all(made.value.tags.map((tag) => loadImageOnNodes(tc.cluster, tag)));
  } catch (error) {
    await stop();
    throw error;
  }
  return { ...tc, stop };
}
