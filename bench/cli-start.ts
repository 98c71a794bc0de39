/**
 * `depl --help` start time against the `openstack --help` client's, measured side by side in one run.
 * Prints medians and the ratio; the README's table quotes a run of this.
 */
import { execa } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDebianPackages } from '../src/apply/host/packages.js';
import { createLogger } from '../src/util/log.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const depl = ['node', path.join(root, 'dist', 'cli', 'main.js'), '--help'];
const openstack = ['openstack', '--help'];

async function timeOnce(argv: string[]): Promise<number> {
  const start = process.hrtime.bigint();
  const result = await execa(argv[0]!, argv.slice(1), { reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) throw new Error(`${argv.join(' ')} exited ${result.exitCode}: ${String(result.stderr).slice(0, 300)}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function benchCliStart(rounds = 15): Promise<{ deplMs: number; openstackMs: number; ratio: number }> {
  await ensureDebianPackages(['python3-openstackclient'], createLogger());
  await timeOnce(depl);
  await timeOnce(openstack); // warm both page caches before measuring
  const deplTimes: number[] = [];
  const openstackTimes: number[] = [];
  // interleaved, so background load hits both alike
  for (let i = 0; i < rounds; i++) {
    deplTimes.push(await timeOnce(depl));
    openstackTimes.push(await timeOnce(openstack));
  }
  const deplMs = median(deplTimes);
  const openstackMs = median(openstackTimes);
  return { deplMs, openstackMs, ratio: openstackMs / deplMs };
}

export async function main(): Promise<string[]> {
  const r = await benchCliStart();
  return [`depl --help median ${r.deplMs.toFixed(0)} ms vs openstack --help median ${r.openstackMs.toFixed(0)} ms: depl starts ${r.ratio.toFixed(1)}x faster`];
}
