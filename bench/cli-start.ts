/**
 * `depl --help` start time against a bare `node -e 0` (the floor: Node's own start-up) and against the
 * `openstack --help` client's, measured interleaved in one run so that background load hits all alike.
 * Prints the medians and the ratios; the README quotes a run of this.
 */
import { execa } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDebianPackages } from '../src/apply/host/packages.js';
import { createLogger } from '../src/util/log.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const depl = ['node', path.join(root, 'dist', 'cli', 'main.cjs'), '--help'];
const bareNode = ['node', '-e', '0'];
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

/** Medians of `rounds` interleaved runs of each command, after one unmeasured run of each warms the page cache. */
export async function benchCliStart(rounds = 11, withOpenstack = true): Promise<{ deplMs: number; nodeMs: number; openstackMs?: number; overNode: number }> {
  const peers = withOpenstack ? [depl, bareNode, openstack] : [depl, bareNode];
  if (withOpenstack) await ensureDebianPackages(['python3-openstackclient'], createLogger());
  for (const argv of peers) await timeOnce(argv);
  const times = peers.map(() => [] as number[]);
  for (let i = 0; i < rounds; i++) {
    for (const [j, argv] of peers.entries()) times[j]!.push(await timeOnce(argv));
  }
  const [deplMs, nodeMs, openstackMs] = times.map(median) as [number, number, number | undefined];
  return { deplMs, nodeMs, ...(openstackMs !== undefined ? { openstackMs } : {}), overNode: deplMs / nodeMs };
}

export async function main(): Promise<string[]> {
  const r = await benchCliStart(11, !process.argv.includes('--no-openstack'));
  return [
    `depl --help median ${r.deplMs.toFixed(0)} ms vs node -e 0 median ${r.nodeMs.toFixed(0)} ms (11 interleaved runs): ${r.overNode.toFixed(2)}x a bare Node start (target: at most 1.15x)`,
    ...(r.openstackMs !== undefined ? [`openstack --help median ${r.openstackMs.toFixed(0)} ms: depl starts ${(r.openstackMs / r.deplMs).toFixed(1)}x faster`] : []),
  ];
}
