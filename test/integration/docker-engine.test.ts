import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { importHostBinariesImage } from '../support/rootfs-image.js';
import { waitFor } from '../support/wait.js';

describe('the Docker Engine the integration tests use', () => {
  const docker = new Docker({ socketPath: inject('dockerSocket') });
  const tag = `depl-test-echo:${randomBytes(4).toString('hex')}`;
  const containers: string[] = [];

  beforeAll(async () => {
    await importHostBinariesImage(tag, ['sh', 'cat'], ['/bin/sh', '-c']);
  });

  afterAll(async () => {
    for (const id of containers) await docker.getContainer(id).remove({ force: true }).catch(() => {});
    await docker.getImage(tag).remove({ force: true }).catch(() => {});
  });

  it('runs a container from an image imported offline and reads its output', async () => {
    const marker = randomBytes(8).toString('hex');
    const container = await docker.createContainer({ Image: tag, Cmd: [`echo hello-${marker}; cat /etc-marker`], NetworkDisabled: true });
    containers.push(container.id);
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on('data', (c: Buffer) => chunks.push(c));
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    container.modem.demuxStream(stream, stdout, process.stderr);
    await container.start();
    const { StatusCode } = await container.wait();
    expect(StatusCode).toBe(0);
    // the attached stream may still be delivering the last lines when the container's exit is reported
    const output = await waitFor('the container\'s output', async () => {
      const text = Buffer.concat(chunks).toString();
      return text.endsWith('depl test image\n') ? text : undefined;
    }, 5_000, 10);
    expect(output).toBe(`hello-${marker}\ndepl test image\n`);
  });
});
