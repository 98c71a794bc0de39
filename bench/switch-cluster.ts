/**
 * `depl switch` as an operator runs it, on a real local 3-node cluster (test/support/cluster.ts) with two
 * installed versions (busybox httpd services, 2 tasks each, spread over the nodes) behind the edge service:
 * from the moment the CLI process is spawned until every new request to the live domain is answered by the
 * new version, while clients poll the live domain (keep-alive, new-connection and cookie-keeping clients).
 * The CLI reports where its time went (`depl switch` prints its phases on stderr); the breakdown here is the
 * median of each phase. Its peer in the same run: the same CLI's `depl status` (start, SSH, one read), the
 * floor of any command that asks the cluster something; and, with DEPL_BENCH_BEFORE=<another build's
 * dist/cli/main.cjs or, before it, main.js>, that build's `depl switch`, every other pair of switches.
 * DEPL_BENCH_CLI=<a build's dist/cli/main.cjs> measures that build instead of this checkout's dist (a copy made
 * before the run, so the checkout can be rebuilt while the bench waits for the machine or runs).
 */
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { execa } from 'execa';
import { managerEngine } from '../src/apply/docker.js';
import { ensureEdgeService } from '../src/apply/edge/service.js';
import { silentLogger } from '../src/util/log.js';
import { pollUntil } from '../src/util/poll.js';
import { clusterPortFor } from '../src/workflows/cluster-port.js';
import { syncRelease } from '../src/workflows/release.js';
import { switchVersion } from '../src/workflows/switch.js';
import { importBusyboxImage, startBusyboxVersion } from '../test/support/busybox-image.js';
import { cliEntry } from '../test/support/cli.js';
import { loadImageOnNodes, startTestCluster, type TestCluster } from '../test/support/cluster.js';
import { runLoad } from '../test/support/load.js';
import { importNginxImage } from '../test/support/nginx-image.js';

const SWITCHES = 11;
const STATUS_RUNS = 5;
const GAP_MS = 1_500;
/** The phases `depl switch` reports, in the order they happen. */
export const SWITCH_PHASES = ['start', 'connect', 'lock', 'read', 'plan', 'checks', 'recordIntent', 'routingWrite', 'edgeConfirm', 'record', 'unlock', 'confirm'] as const;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length === 0 ? NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `switched in 0.42s (start 80ms, connect 60ms, ...)`, the line `depl switch` ends with on stderr. */
export function parsePhases(stderr: string): Record<string, number> {
  const line = /switched in [\d.]+s \(([^)]*)\)/.exec(stderr)?.[1];
  if (line === undefined) throw new Error(`depl switch did not report its phases:\n${stderr}`);
  const phases: Record<string, number> = {};
  for (const part of line.split(', ')) {
    const match = /^(\w+) (\d+)ms$/.exec(part);
    if (match) phases[match[1]!] = Number(match[2]);
  }
  return phases;
}

export interface ClusterSwitchBench {
  /** Spawn of `depl switch` to the last request the old version answered (the next ones all went to the new one). */
  servedByNewMs: number[];
  /** Spawn to the process exiting. */
  commandMs: number[];
  phases: Record<string, number[]>;
  /** Spawn to exit of `depl status`. */
  statusMs: number[];
  requests: number;
  failed: number;
  /** Requests per second the clients made. */
  rate: number;
  /** The same figures for the CLI at DEPL_BENCH_BEFORE (another build of depl), interleaved with this one's runs. */
  before?: { servedByNewMs: number[]; commandMs: number[] };
}

export async function benchClusterSwitch(): Promise<ClusterSwitchBench> {
  const suffix = randomBytes(4).toString('hex');
  const busybox = `depl-bench-busybox:${suffix}`;
  const nginx = `depl-bench-nginx:${suffix}`;
  const docker = new Docker({ socketPath: '/var/run/docker.sock' });
  let tc: TestCluster | undefined;
  try {
    const [cluster] = await Promise.all([
      startTestCluster({ nodes: 3, app: `bs${suffix.slice(0, 4)}`, config: { services: { web: { image: busybox, port: 8080, http: true, health: '/healthz' } } } }),
      importBusyboxImage(busybox),
      importNginxImage(nginx),
    ]);
    tc = cluster;
    const { app, domain } = tc.loaded.config;
    await Promise.all([loadImageOnNodes(tc.cluster, busybox), loadImageOnNodes(tc.cluster, nginx)]);
    for (const version of ['v1', 'v2']) {
      await startBusyboxVersion(tc.cluster.manager, { app, version, network: tc.cluster.network, image: busybox, replicas: 2, health: true });
    }
    const engine = await managerEngine(tc.cluster);
    try {
      await ensureEdgeService(tc.cluster, engine, { app, image: nginx });
    } finally {
      await engine.close();
    }
    const control = await clusterPortFor(tc.cluster, tc.loaded.config, silentLogger);
    await syncRelease(control, 'depl buildinst');
    // both versions' tasks must answer before the first timed switch (v2 first, so v1 ends up live)
    for (const version of ['v2', 'v1']) {
      await pollUntil(() => switchVersion(control, version).then(() => true, () => undefined), {
        timeoutMs: 180_000, intervalMs: 500, onTimeout: () => { throw new Error(`${version} never became live`); },
      });
    }
    const cwd = tc.dir;
    const measured = process.env.DEPL_BENCH_CLI ?? cliEntry;
    const cli = (args: string[], entry = measured) => execa('node', [entry, ...args], { cwd, env: { NO_COLOR: '1' }, reject: false, stdin: 'ignore' });
    const statusMs: number[] = [];
    for (let i = 0; i < STATUS_RUNS; i++) {
      const start = performance.now();
      const run = await cli(['status']);
      if (run.exitCode !== 0) throw new Error(`depl status failed: ${run.stderr}`);
      statusMs.push(performance.now() - start);
    }
    const runs: { start: number; end: number; from: string; phases: Record<string, number> }[] = [];
    const beforeRuns: typeof runs = [];
    const before = process.env.DEPL_BENCH_BEFORE;
    const loadStart = performance.now();
    const load = await runLoad(
      {
        url: control.site.url, host: domain, durationSeconds: Math.ceil(((SWITCHES + 1) * (GAP_MS + 1_000)) / 1000),
        // enough to see the moment of the switch within ~10 ms, light enough not to starve the CLI of the 2 cores
        keepAlive: { connections: 2, rate: 100 }, newConnections: { connections: 1, rate: 25 }, sticky: { clients: 2, rate: 10 },
      },
      async () => {
        for (let i = 0; i < SWITCHES * (before === undefined ? 1 : 2); i++) {
          await new Promise((r) => setTimeout(r, GAP_MS));
          const from = i % 2 === 0 ? 'v1' : 'v2';
          // with a build to compare, every other switch is made by it (interleaved: the same load hits both)
          const peer = before !== undefined && i % 4 >= 2;
          const start = performance.now();
          const run = await cli(['switch', from === 'v1' ? 'v2' : 'v1'], peer ? before : measured);
          const end = performance.now();
          if (run.exitCode !== 0) throw new Error(`depl switch failed: ${run.stderr}`);
          (peer ? beforeRuns : runs).push({ start, end, from, phases: peer ? {} : parsePhases(String(run.stderr)) });
        }
      },
    );
    const starts = [...runs, ...beforeRuns].map((r) => r.start).sort((a, b) => a - b);
    const servedByNew = (run: (typeof runs)[number]) => {
      const until = starts.find((t) => t > run.start) ?? Infinity;
      const lastOld = load.samples.filter((s) => s.sentAt >= run.start && s.sentAt < until && s.version === run.from).reduce((a, s) => Math.max(a, s.sentAt), run.start);
      return lastOld - run.start;
    };
    const servedByNewMs = runs.map(servedByNew);
    const phases: Record<string, number[]> = {};
    for (const run of runs) for (const [name, ms] of Object.entries(run.phases)) (phases[name] ??= []).push(ms);
    return {
      servedByNewMs, commandMs: runs.map((r) => r.end - r.start), phases, statusMs,
      ...(before !== undefined ? { before: { servedByNewMs: beforeRuns.map(servedByNew), commandMs: beforeRuns.map((r) => r.end - r.start) } } : {}),
      requests: load.requests, failed: load.errors + load.timeouts + load.non2xx, rate: load.requests / ((performance.now() - loadStart) / 1000),
    };
  } finally {
    await tc?.stop();
    for (const image of [busybox, nginx]) await docker.getImage(image).remove({ force: true }).catch(() => {});
  }
}

export async function main(): Promise<string[]> {
  const r = await benchClusterSwitch();
  const served = median(r.servedByNewMs);
  const status = median(r.statusMs);
  const known = [...SWITCH_PHASES, ...Object.keys(r.phases).filter((p) => !(SWITCH_PHASES as readonly string[]).includes(p))];
  const breakdown = known.filter((p) => r.phases[p] !== undefined).map((p) => `${p} ${median(r.phases[p]!).toFixed(0)}`).join(', ');
  const sorted = [...r.servedByNewMs].sort((a, b) => a - b);
  return [
    `${r.servedByNewMs.length} \`depl switch\` runs (CLI processes) on a local 3-node cluster, 2 versions x 2 tasks, clients polling the live domain (${r.rate.toFixed(0)} req/s):`,
    `  spawn -> every new request served by the new version: p50 ${served.toFixed(0)} ms (min ${sorted[0]!.toFixed(0)}, max ${sorted.at(-1)!.toFixed(0)}; target p50 < 400 ms)`,
    `  spawn -> exit: p50 ${median(r.commandMs).toFixed(0)} ms`,
    `  phases (p50 ms): ${breakdown}`,
    `  peer, \`depl status\` spawn -> exit (start, SSH, one read): p50 ${status.toFixed(0)} ms; switch served / status = ${(served / status).toFixed(2)}x`,
    ...(r.before !== undefined ? [
      `  peer, the build at DEPL_BENCH_BEFORE, interleaved: served p50 ${median(r.before.servedByNewMs).toFixed(0)} ms, exit p50 ${median(r.before.commandMs).toFixed(0)} ms; this one / that one = ${(served / median(r.before.servedByNewMs)).toFixed(2)}x`,
    ] : []),
    `  failed requests: ${r.failed} of ${r.requests}`,
  ];
}
