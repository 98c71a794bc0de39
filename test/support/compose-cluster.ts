import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { expect } from 'vitest';
import { parseDocument } from 'yaml';
import { ensureBaseImages } from '../../src/apply/base-images.js';
import { engineAtSocket } from '../../src/apply/docker.js';
import { silentLogger } from '../../src/util/log.js';
import { freeSubnet } from './cluster.js';
import { buildPostgresImage, loadIntoNode } from './postgres-image.js';

/**
 * Points the depl.yaml that `depl init` wrote from a compose file at a fresh one-node local cluster of its own
 * (a free subnet, the test's prefix), with postgres:16 made offline, brings it up with `depl node-up`, and
 * loads that image into the node (there is no registry to pull it from).
 */
export async function upOneNodeWithOfflinePostgres(
  configFile: string,
  prefix: string,
  cli: (args: string[]) => Promise<{ exitCode: number; stderr: string }>,
): Promise<void> {
  const document = parseDocument(await readFile(configFile, 'utf8'));
  document.setIn(['provider', 'subnet'], await freeSubnet());
  document.setIn(['provider', 'prefix'], prefix);
  document.setIn(['provider', 'nodes'], 1);
  const postgres = await buildPostgresImage();
  document.setIn(['images', 'postgres:16'], postgres);
  await writeFile(configFile, document.toString());
  const up = await cli(['node-up']);
  expect(up.exitCode, up.stderr.slice(-2000)).toBe(0);
  await loadIntoNode(postgres, `${prefix}-node-1`);
}

/**
 * An image a compose file names (`image: notes-web:1.0`) made offline from a fixture folder on depl's offline
 * node image (its Dockerfile takes NODE_IMAGE), tagged after the folder's content, loaded into the node, and
 * mapped in depl.yaml's images: so buildinst runs it where the compose file names the public one.
 */
export async function offlineImageFor(configFile: string, named: string, folder: string, nodeContainer: string): Promise<string> {
  const base = (await ensureBaseImages(engineAtSocket(), silentLogger)).node;
  const hash = createHash('sha256').update(base);
  for (const file of (await readdir(folder)).sort()) hash.update(file).update(await readFile(path.join(folder, file)));
  const tag = `depl-test/${path.basename(folder)}:${hash.digest('hex').slice(0, 10)}`;
  if ((await execa('docker', ['image', 'inspect', tag], { reject: false })).exitCode !== 0) {
    await execa('docker', ['build', '-q', '--build-arg', `NODE_IMAGE=${base}`, '-t', tag, folder]);
  }
  await mapImage(configFile, named, tag, nodeContainer);
  return tag;
}

/** Loads an image of this machine into the node and maps the compose file's name for it in depl.yaml's images:. */
export async function mapImage(configFile: string, named: string, tag: string, nodeContainer: string): Promise<void> {
  await loadIntoNode(tag, nodeContainer);
  const document = parseDocument(await readFile(configFile, 'utf8'));
  document.setIn(['images', named], tag);
  await writeFile(configFile, document.toString());
}
