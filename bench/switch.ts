/**
 * `depl switch` under load, through real nginx (with its Lua module) on loopback: how long from the command's
 * start until every new request is served by the new version, with where the time went, against its peer
 * measured in the same run on the same edge under the same load: a graceful nginx reload (write, nginx -t,
 * HUP, until the new workers answer and the old ones accept nothing more), which is what every switch cost
 * while versions lived in nginx.conf and what a settings change still costs. Failed requests are counted in
 * each half. Load: keep-alive (autocannon), new-connection (undici) and cookie-keeping Node http clients.
 */
import { applyEdgeConfig, reloadEdgeConfig } from '../src/apply/edge/config.js';
import type { ClusterPort } from '../src/workflows/cluster-port.js';
import { switchVersion } from '../src/workflows/switch.js';
import { localControl, startLocalEdge, startVersionServer } from '../test/support/local-edge.js';
import { runLoad, type LoadResult } from '../test/support/load.js';

const SWITCHES = 9;
const RELOADS = 9;
const GAP_MS = 1_200;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length === 0 ? NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Run { start: number; end: number; from: string; phases: Record<string, number> }

export interface SwitchBench {
  /** Command start to the send time of the last request the old version answered (0: none after the start). */
  servedByNewMs: number[];
  /** Command start to the command returning. */
  commandMs: number[];
  phases: Record<string, number[]>;
  /** Reload peer: command start to the new configuration answering with no old worker accepting. */
  reloadMs: number[];
  requests: number;
  failedDuringSwitches: number;
  failedDuringReloads: number;
}

export async function benchSwitch(): Promise<SwitchBench> {
  const app = `b${process.pid}`;
  const domain = 'bench.test';
  const edge = await startLocalEdge(app);
  const servers = [await startVersionServer(app, 'v1', { delayMs: 2 }), await startVersionServer(app, 'v2', { delayMs: 2 })];
  try {
    await applyEdgeConfig(edge.site, { app, domain, versions: servers.map((s) => s.edgeVersion) });
    const control: ClusterPort = localControl(edge, app, domain, () => servers);
    await switchVersion(control, 'v1');
    const runs: Run[] = [];
    const reloads: { start: number; end: number }[] = [];
    let reloadHalf = Infinity;
    const load: LoadResult = await runLoad(
      {
        url: edge.site.url, host: domain, durationSeconds: Math.ceil(((SWITCHES + RELOADS + 2) * GAP_MS) / 1000) + 2,
        keepAlive: { connections: 8, rate: 300 }, newConnections: { connections: 4, rate: 100 }, sticky: { clients: 4, rate: 40 },
      },
      async () => {
        for (let i = 0; i < SWITCHES; i++) {
          await new Promise((r) => setTimeout(r, GAP_MS));
          const from = i % 2 === 0 ? 'v1' : 'v2';
          const start = performance.now();
          const result = await switchVersion(control, from === 'v1' ? 'v2' : 'v1');
          runs.push({ start, end: performance.now(), from, phases: result.phases });
        }
        await new Promise((r) => setTimeout(r, GAP_MS));
        reloadHalf = performance.now();
        for (let i = 0; i < RELOADS; i++) {
          await new Promise((r) => setTimeout(r, GAP_MS));
          // a settings change that makes a new configuration (as a switch used to)
          const site = { ...edge.site, render: { ...edge.site.render, pollSeconds: i % 2 === 0 ? 0.06 : 0.05 } };
          const start = performance.now();
          await reloadEdgeConfig(site, { app });
          reloads.push({ start, end: performance.now() });
        }
      },
    );
    const servedByNewMs = runs.map((run) => {
      const lastOld = load.samples.filter((s) => s.sentAt >= run.start && s.sentAt < run.start + GAP_MS && s.version === run.from).at(-1);
      return lastOld === undefined ? 0 : lastOld.sentAt - run.start;
    });
    const phases: Record<string, number[]> = {};
    for (const run of runs) for (const [name, ms] of Object.entries(run.phases)) (phases[name] ??= []).push(ms);
    const failedDuringReloads = load.failures.filter((f) => f.at >= reloadHalf).length;
    return {
      servedByNewMs,
      commandMs: runs.map((r) => r.end - r.start),
      phases,
      reloadMs: reloads.map((r) => r.end - r.start),
      requests: load.requests,
      failedDuringSwitches: load.failures.length - failedDuringReloads + load.non2xx,
      failedDuringReloads,
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
  const phase = (name: string) => `${name} ${median(r.phases[name] ?? []).toFixed(0)}`;
  return [
    `${r.servedByNewMs.length} switches, then ${r.reloadMs.length} graceful reloads, under ~440 req/s (keep-alive, new connections, cookie clients) through nginx + Lua on loopback:`,
    `  switch, command start -> every new request on the new version: median ${served.toFixed(0)} ms (max ${Math.max(...r.servedByNewMs).toFixed(0)} ms)`,
    `  whole switch command: median ${median(r.commandMs).toFixed(0)} ms; phases (median ms): ${['lock', 'read', 'checks', 'recordIntent', 'routingWrite', 'edgeConfirm', 'record', 'confirm', 'unlock'].map(phase).join(', ')}`,
    `    (edge time = routingWrite + edgeConfirm; reload ${median(r.phases.reload ?? []).toFixed(0)})`,
    `  peer, a graceful reload (write, nginx -t, HUP, until only new workers accept): median ${reload.toFixed(0)} ms`,
    `  switch (to every new request served) / reload = ${(served / Math.max(reload, 1)).toFixed(2)}x; edge time / reload = ${((median(r.phases.routingWrite ?? []) + median(r.phases.edgeConfirm ?? [])) / Math.max(reload, 1)).toFixed(2)}x`,
    `  failed requests: ${r.failedDuringSwitches} during the switches, ${r.failedDuringReloads} during the reloads, of ${r.requests}`,
  ];
}
