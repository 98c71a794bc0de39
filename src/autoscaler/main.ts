import { readFile, rename, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  controllerSettingsSchema, decideScale, parseControllerState, parseGauge, recordReading, startMemory,
  type ControllerSettings, type ControllerState, type ScaleDecision, type ScalePolicy,
} from '../plan/autoscale.js';
import { EngineSocket } from '../apply/engine-socket.js';
import { AUTOSCALER_GATE_SOCKET } from '../plan/autoscale-gate.js';
import { PoolController } from './pools.js';
import { poolSwarmOn } from './pool-swarm.js';

/**
 * The autoscale controller: `<app>-<version>-autoscaler`, one task on the manager (src/plan/autoscale.ts plans
 * it). While its version is live (release.json, read-only from the manager) it reads the backlog gauge from the
 * version's metrics service every interval, asks the pure `decideScale`, and sets the replicas of the version's
 * service through the manager's Engine API. It has no Docker socket: it speaks to its version's engine gate
 * (`<app>-<version>-autoscaler-gate`, src/plan/autoscale-gate.ts), which passes on only the inspect and the
 * replicas of this version's autoscaled services within their bounds, with the Engine API client it shares with
 * the TLS renewal task (src/apply/engine-socket.ts). Decisions go to stdout as JSON lines (`depl logs
 * autoscaler`) and to its state file, which `depl status` reads.
 *
 * Bundled into one file by scripts/bundle-autoscaler.mjs and shipped as a tiny image (templates/autoscaler.Dockerfile).
 */
const engine = new EngineSocket(AUTOSCALER_GATE_SOCKET);

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), ...event })}\n`);
}

async function readBacklog(policy: ScalePolicy): Promise<number> {
  const headers: Record<string, string> = { accept: 'text/plain' };
  if (policy.metrics.tokenFile !== undefined) headers.authorization = `Bearer ${(await readFile(policy.metrics.tokenFile, 'utf8')).replace(/\r?\n$/, '')}`;
  const response = await fetch(policy.metrics.url, { headers, signal: AbortSignal.timeout(5_000) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${policy.metrics.url} answered ${response.status}`);
  const value = parseGauge(text, policy.metrics.gauge);
  if (value === null) throw new Error(`${policy.metrics.url} has no number for ${policy.metrics.gauge}`);
  return value;
}

async function readLive(file: string): Promise<string | null> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (text === null) return null;
  const doc = JSON.parse(text) as { live?: unknown };
  return typeof doc.live === 'string' ? doc.live : null;
}

async function readState(file: string, version: string): Promise<ControllerState> {
  const text = await readFile(file, 'utf8').catch(() => null);
  const parsed = text === null ? null : parseControllerState(JSON.parse(text) as unknown);
  return parsed ?? { version, live: false, updatedAt: new Date(0).toISOString(), services: {} };
}

async function writeState(file: string, state: ControllerState): Promise<void> {
  const temp = `${file}.tmp-${process.pid}`;
  await writeFile(temp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
  await rename(temp, file);
}

class Controller {
  private state: ControllerState;
  private errors = new Map<string, string>();

  private readonly pools?: PoolController;

  constructor(private readonly settings: ControllerSettings, state: ControllerState) {
    this.state = state;
    // the pool nodes are drained through the same Engine socket before Heat removes them
    if (settings.pools !== undefined) this.pools = new PoolController(settings.pools, emit, undefined, poolSwarmOn(engine));
  }

  async tick(): Promise<void> {
    const { settings } = this;
    const live = await readLive(settings.releaseFile);
    const isLive = live === settings.version;
    if (isLive !== this.state.live) emit({ event: isLive ? 'live' : 'idle', version: settings.version, live });
    if (!isLive) {
      if (this.state.live) await this.save({ ...this.state, live: false });
      return;
    }
    const now = Date.now();
    // Taking over (the version just became live): a cooldown before any scale-down. A restart while live
    // keeps the memory it wrote.
    const takingOver = !this.state.live;
    const services = { ...this.state.services };
    const backlogs = new Map<string, number | null>();
    for (const policy of settings.policies) {
      const previous = services[policy.service];
      const memory = !takingOver && previous !== undefined ? previous.memory : startMemory(now);
      const service = await engine.inspectService(policy.swarmService);
      if (service === null) {
        this.report(policy, `service ${policy.swarmService} does not exist`);
        continue;
      }
      const current = service.Spec.Mode?.Replicated?.Replicas ?? 0;
      let backlog: number | null = null;
      let error: string | undefined;
      try {
        backlog = await readBacklog(policy);
      } catch (e) {
        error = `reading the backlog: ${(e as Error).message}`;
      }
      backlogs.set(policy.service, backlog);
      const observation = { now, current, backlog };
      let decision: ScaleDecision = decideScale(policy, memory, observation);
      if (decision.action !== 'hold') {
        try {
          await engine.setReplicas(service, decision.to);
          emit({ event: 'scale', service: policy.service, swarmService: policy.swarmService, action: decision.action, from: decision.from, to: decision.to, backlog, wanted: decision.wanted, reason: decision.reason });
        } catch (e) {
          error = `scaling to ${decision.to}: ${(e as Error).message}`;
          // not done: the memory stays as it was, and the next reading decides again
          decision = { ...decision, action: 'hold', to: current, reason: `${decision.reason}, but the update failed`, memory };
        }
      }
      this.report(policy, error);
      services[policy.service] = recordReading(previous, policy, observation, decision, error);
    }
    // the pools (provider.pools.<name>.autoscale) after the services: they size by the backlogs just read
    const pools = this.pools === undefined ? undefined : await this.pools.tick(now, backlogs, this.state.pools ?? {}, takingOver);
    for (const [pool, state] of Object.entries(pools ?? {})) {
      const before = this.errors.get(`pool:${pool}`);
      if (state.error !== before) {
        if (state.error === undefined) this.errors.delete(`pool:${pool}`);
        else this.errors.set(`pool:${pool}`, state.error);
        emit(state.error === undefined ? { event: 'recovered', pool } : { event: 'error', pool, error: state.error });
      }
    }
    await this.save({ version: settings.version, live: true, updatedAt: new Date(now).toISOString(), services, ...(pools !== undefined ? { pools } : {}) });
  }

  /** Errors are logged when they start, change or end; not on every reading. */
  private report(policy: ScalePolicy, error: string | undefined): void {
    const before = this.errors.get(policy.service);
    if (error === before) return;
    if (error === undefined) {
      this.errors.delete(policy.service);
      emit({ event: 'recovered', service: policy.service });
    } else {
      this.errors.set(policy.service, error);
      emit({ event: 'error', service: policy.service, error });
    }
  }

  private async save(state: ControllerState): Promise<void> {
    this.state = state;
    await writeState(this.settings.stateFile, state);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { settings: { type: 'string' } }, strict: true });
  if (values.settings === undefined) throw new Error('missing --settings <json>');
  const settings = controllerSettingsSchema.parse(JSON.parse(values.settings) as unknown);
  const controller = new Controller(settings, await readState(settings.stateFile, settings.version));
  emit({ event: 'start', version: settings.version, intervalMs: settings.intervalMs, services: settings.policies.map((p) => `${p.service} ${p.min}..${p.max}, ${p.targetBacklog} per replica`) });
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const stop = () => {
    stopping = true;
    clearTimeout(timer);
    void running.finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const loop = () => {
    running = controller.tick().catch((error: Error) => emit({ event: 'error', error: error.message }));
    void running.finally(() => {
      if (!stopping) timer = setTimeout(loop, settings.intervalMs);
    });
  };
  loop();
}

main().catch((error: unknown) => {
  process.stderr.write(`autoscaler: ${(error as Error).message}\n`);
  process.exit(1);
});
