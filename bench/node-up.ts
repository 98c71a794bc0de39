/**
 * Time from nothing to an N-node swarm on the local provider (node image already cached), for 1, 3 and 5
 * nodes, with each figure's ratio to the 1-node time: nodes go up in parallel, so more nodes should cost
 * little. Also the re-run on the healthy 3-node cluster (idempotence check). `npm run bench node-up`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Docker from 'dockerode';
import { stringify } from 'yaml';
import { LocalLauncher } from '../src/apply/local/launcher.js';
import { ensureNodeImage } from '../src/apply/local/node-image.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger, silentLogger } from '../src/util/log.js';
import { nodeInputsFor } from '../src/workflows/command-inputs.js';
import { nodeUp } from '../src/workflows/node-up.js';

async function freeSubnet(): Promise<string> {
  const used = new Set((await new Docker().listNetworks()).flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet)));
  for (;;) {
    const subnet = `10.213.${Math.floor(Math.random() * 250) + 1}.0/24`;
    if (!used.has(subnet)) return subnet;
  }
}

async function timeCluster(nodes: number, rerun: boolean): Promise<{ upSeconds: number; rerunSeconds?: number }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-bench-'));
  const prefix = `db-${randomBytes(3).toString('hex')}`;
  const subnet = await freeSubnet();
  await writeFile(path.join(dir, 'depl.yaml'), stringify({
    app: 'bench', domain: 'bench.localhost', provider: { type: 'local', nodes, subnet, prefix }, services: { web: { image: 'x:1' } },
  }));
  try {
    const inputs = nodeInputsFor(await loadConfig(path.join(dir, 'depl.yaml')));
    const started = Date.now();
    await nodeUp(inputs, silentLogger);
    const upSeconds = (Date.now() - started) / 1000;
    if (!rerun) return { upSeconds };
    const again = Date.now();
    const second = await nodeUp(inputs, silentLogger);
    if (second.changes.length > 0) throw new Error(`re-run changed things: ${second.changes.join('; ')}`);
    return { upSeconds, rerunSeconds: (Date.now() - again) / 1000 };
  } finally {
    await new LocalLauncher(prefix, subnet).removeAll();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function main(): Promise<string[]> {
  const imageStart = Date.now();
  await ensureNodeImage(createLogger());
  const lines = [`node image ready in ${((Date.now() - imageStart) / 1000).toFixed(1)} s (cached after the first build)`];
  const one = await timeCluster(1, false);
  const three = await timeCluster(3, true);
  const five = await timeCluster(5, false);
  const row = (n: number, s: number) => `${n} node${n === 1 ? ' ' : 's'}: ${s.toFixed(1).padStart(5)} s from nothing to a Ready swarm   ${(s / one.upSeconds).toFixed(2)} x the 1-node time`;
  lines.push(row(1, one.upSeconds), row(3, three.upSeconds), row(5, five.upSeconds));
  lines.push(`re-run on the healthy 3-node cluster: ${three.rerunSeconds!.toFixed(1)} s, nothing changed`);
  return lines;
}

// also runnable on its own by a runner that keeps argv (node with type stripping, tsx)
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const line of await main()) console.log(line);
}
