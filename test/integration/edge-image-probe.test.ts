import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEdgeImage } from '../../src/apply/edge/service.js';
import { LocalRemote } from '../../src/apply/local-remote.js';
import { makeTestImages, testImages } from '../support/image-cluster.js';

/**
 * `images.nginx` naming an image without the Lua module is refused before it replaces the edge, with what
 * to do, instead of an edge restarting in a loop. Against this machine's Docker Engine, with two offline
 * images: nginx with the module (and no shell) and busybox (a shell, no nginx).
 */
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const images = testImages();
const { nginx, busybox } = images;
const host = new LocalRemote();
let made: Awaited<ReturnType<typeof makeTestImages>> | undefined;

beforeAll(async () => {
  made = await makeTestImages(images, ['nginx', 'busybox']);
}, 300_000);

afterAll(async () => {
  await made?.remove();
});

const containersOf = async (image: string) => (await docker.listContainers({ all: true })).filter((c) => c.Image === image);

describe('the edge image check', () => {
  it('accepts nginx with the Lua modules, even without a shell in the image, and leaves no container', async () => {
    await expect(checkEdgeImage(host, nginx)).resolves.toBeUndefined();
    expect(await containersOf(nginx)).toEqual([]);
  });

  it('refuses an image without the modules, exit 2, naming the missing module and the fix', async () => {
    const refused = await checkEdgeImage(host, busybox).catch((error: unknown) => error);
    expect(refused).toMatchObject({ exitCode: 2, code: 'EDGE_IMAGE_NO_LUA' });
    expect(String((refused as Error).message)).toMatch(new RegExp(`edge image ${busybox} has no nginx Lua module \\(no /usr/lib/nginx/modules/ndk_http_module.so`));
    expect((refused as { hint: string }).hint).toMatch(/Remove images.nginx/);
    expect(await containersOf(busybox)).toEqual([]);
  });
});
