import { readFile, writeFile } from 'node:fs/promises';
import { expect } from 'vitest';
import { parseDocument } from 'yaml';
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
