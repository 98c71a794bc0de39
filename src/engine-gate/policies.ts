import { decideScaleGateRequest, scaleGateView, serviceToRead, type GateService, type ScaleGateSettings } from '../plan/autoscale-gate.js';
import { decidePoolGateRequest, isPoolRequest, nodeToRead, poolTaskView } from '../plan/autoscale-pool-gate.js';
import { edgeServiceName } from '../plan/edge-service.js';
import { decideGateRequest, needsEdgeContainer } from '../plan/tls/engine-gate.js';
import type { GatePolicy } from './server.js';

/** An exec's start lasts as long as its command: the renewal task gives nginx -t and the probe at most 60 s. */
const EXEC_FORWARD_TIMEOUT_MS = 120_000;
const REMEMBERED_EXECS = 256;

/**
 * The renewal task's gate (src/plan/tls/engine-gate.ts decides): the edge's listing and the four edge commands.
 * The execs it created are remembered (the newest few hundred) so that only those can be started and inspected.
 */
export function edgeGatePolicy(app: string): GatePolicy {
  const execs = new Set<string>();
  return {
    passes: `the listing of ${edgeServiceName(app)}'s container and the renewal task's edge commands only`,
    async handle(asked, engine) {
      // the edge's container is looked up only for an exec of an allowed command: the one fact the gate asks the Engine first
      const edgeContainer = needsEdgeContainer(app, asked) ? await engine.runningContainerOf(edgeServiceName(app)) : null;
      const decision = decideGateRequest(app, asked, { edgeContainer, execs });
      if (!decision.allow) return { refused: decision.reason, status: 403 };
      const forwarded = await engine.request(decision.method, decision.path, decision.body, EXEC_FORWARD_TIMEOUT_MS);
      if (decision.kind === 'exec-create' && forwarded.status === 201) {
        execs.add((JSON.parse(forwarded.body.toString()) as { Id: string }).Id);
        if (execs.size > REMEMBERED_EXECS) execs.delete(execs.values().next().value!);
      }
      return forwarded;
    },
  };
}

/**
 * An autoscale controller's gate (src/plan/autoscale-gate.ts decides): the inspect of the version's autoscaled
 * services, answered with their id, version, name and mode only, and their replicas within bounds, the update's
 * body rebuilt from the service as the gate reads it just before.
 */
export function scaleGatePolicy(settings: ScaleGateSettings): GatePolicy {
  return {
    passes: `the inspect and the replicas of ${settings.services.map((s) => `${s.name} (${s.min}..${s.max})`).join(', ')}${settings.pools !== undefined ? `, and the drain of the nodes of pool ${settings.pools.join(', ')},` : ''} only`,
    async handle(asked, engine) {
      if (isPoolRequest(asked)) {
        const pools = { app: settings.app, version: settings.version, pools: settings.pools ?? [] };
        const nodeId = pools.pools.length > 0 ? nodeToRead(asked) : null;
        const decision = decidePoolGateRequest(pools, asked, nodeId === null ? null : await engine.inspectNode(nodeId));
        if (!decision.allow) return { refused: decision.reason, status: decision.status };
        if (decision.kind === 'node-update') return engine.request('POST', decision.path, decision.body);
        const answer = await engine.request('GET', decision.path);
        if (decision.kind !== 'tasks' || answer.status !== 200) return answer;
        return { status: 200, body: Buffer.from(JSON.stringify(poolTaskView(JSON.parse(answer.body.toString())))) };
      }
      const id = serviceToRead(asked);
      const current: GateService | null = id === null ? null : await engine.inspectService(id);
      const decision = decideScaleGateRequest(settings, asked, current);
      if (!decision.allow) return { refused: decision.reason, status: decision.status };
      if (decision.kind === 'update') return engine.request('POST', decision.path, decision.body);
      const inspected = await engine.request('GET', decision.path);
      if (inspected.status !== 200) return inspected;
      return { status: 200, body: Buffer.from(JSON.stringify(scaleGateView(JSON.parse(inspected.body.toString()) as GateService))) };
    },
  };
}
