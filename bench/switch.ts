/**
 * `depl switch` under load, through real nginx on loopback: how long from the command's start until every
 * new request is served by the new version, against the nginx reload inside it (its peer, measured in the
 * same run), and how many requests failed. Load: autocannon, keep-alive and new-connection clients.
 */
import { applyEdgeConfig } from '../src/apply/edge.js';
import { silentLogger } from '../src/util/log.js';
import type { EdgeControl } from '../src/workflows/edge-control.js';
import { switchVersion } from '../src/workflows/switch.js';
import { startLocalEdge, startVersionServer } from '../test/support/local-edge.js';
import { runLoad } from '../test/support/load.js';

const SWITCHES = 8;
const GAP_MS = 1_500;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface SwitchBench {
  switches: number;
  /** Command start to the send time of the last request the old version answered. */
  servedByNewMs: number[];
  /** Command start to the command returning (health check, lock, check, swap, reload, confirmation). */
  commandMs: number[];
  reloadMs: number[];
  requests: number;
  failed: number;
}

export async function benchSwitch(): Promise<SwitchBench> {
  const app = `b${process.pid}`;
  const domain = 'bench.test';
  const edge = await startLocalEdge(app);
  const servers = [await startVersionServer(app, 'v1', { delayMs: 2 }), await startVersionServer(app, 'v2', { delayMs: 2 })];
  try {
    await applyEdgeConfig(edge.site, { app, domain, versions: servers.map((s) => s.edgeVersion) });
    const control: EdgeControl = { app, domain, site: edge.site, stateRemote: edge.site.remote, stateRoot: `${edge.dir}/state`, healthPath: '/healthz', log: silentLogger };
    await switchVersion(control, 'v1');
    const runs: { start: number; end: number; from: string; reloadMs: number }[] = [];
    const load = await runLoad(
      { url: edge.site.url, host: domain, durationSeconds: Math.ceil(((SWITCHES + 1) * GAP_MS) / 1000) + 2, keepAlive: { connections: 8, rate: 300 }, newConnections: { connections: 4, rate: 100 } },
      async () => {
        for (let i = 0; i < SWITCHES; i++) {
          await new Promise((r) => setTimeout(r, GAP_MS));
          const from = i % 2 === 0 ? 'v1' : 'v2';
          const start = performance.now();
          const result = await switchVersion(control, from === 'v1' ? 'v2' : 'v1');
          runs.push({ start, end: performance.now(), from, reloadMs: result.reloadMs });
        }
      },
    );
    const servedByNewMs = runs.map((run) => {
      // New connections: a keep-alive connection opened during nginx's worker overlap may carry one later old answer.
      const lastOld = load.samples.filter((s) => s.client === 'new-connection' && s.sentAt >= run.start && s.sentAt < run.start + GAP_MS && s.version === run.from).at(-1);
      return (lastOld?.sentAt ?? run.start) - run.start;
    });
    return {
      switches: runs.length,
      servedByNewMs,
      commandMs: runs.map((r) => r.end - r.start),
      reloadMs: runs.map((r) => r.reloadMs),
      requests: load.requests,
      failed: load.errors + load.timeouts + load.non2xx,
    };
  } finally {
    await edge.stop();
    await Promise.all(servers.map((s) => s.stop()));
  }
}

export async function main(): Promise<string[]> {
  const r = await benchSwitch();
  const served = median(r.servedByNewMs);
  const reload = median(r.reloadMs);
  return [
    `${r.switches} switches under ~400 req/s (keep-alive + new connections) through nginx ${'on loopback'}:`,
    `  command start -> every new request on the new version: median ${served.toFixed(0)} ms (max ${Math.max(...r.servedByNewMs).toFixed(0)} ms)`,
    `  whole command (lock, health check, nginx -t, swap, reload, record, confirm): median ${median(r.commandMs).toFixed(0)} ms`,
    `  nginx graceful reload alone (swap -> new workers answering): median ${reload.toFixed(0)} ms; switch/reload = ${(served / Math.max(reload, 1)).toFixed(1)}x`,
    `  failed requests: ${r.failed} of ${r.requests} (ratio ${(r.failed / Math.max(r.requests, 1)).toFixed(5)})`,
  ];
}
