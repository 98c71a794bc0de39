import type { ScaleGateSettings } from '../plan/autoscale-gate.js';
import { AUTOSCALER_GATE_SOCKET } from '../plan/autoscale-gate.js';
import { engineGateSocket } from '../plan/tls/engine-gate.js';
import { createLogger } from '../util/log.js';
import { edgeGatePolicy, scaleGatePolicy } from './policies.js';
import { startEngineGate } from './server.js';

/**
 * The engine gate's program: a swarm service beside the one program on the cluster it serves, holding the
 * Docker socket so that program does not. Its settings (DEPL_ENGINE_GATE) choose its one policy: the TLS
 * renewal task's (`{"app"}`: src/plan/tls/engine-gate.ts, installed with the task) or an autoscale
 * controller's (`{"policy":"scale",...}`: src/plan/autoscale-gate.ts, installed with the version).
 */
type GateSettings = { policy?: 'edge'; app: string } | ScaleGateSettings;
const settings = JSON.parse(process.env.DEPL_ENGINE_GATE ?? 'null') as GateSettings | null;
const base = createLogger({ color: false });
const stamp = (m: string) => `${new Date().toISOString()} ${m}`;
const log = { info: (m: string) => base.info(stamp(m)), warn: (m: string) => base.warn(stamp(m)) };

if (settings === null || !/^[a-z0-9-]+$/.test(settings.app)) {
  log.warn('DEPL_ENGINE_GATE is not set: this task is started by depl buildinst with its settings');
  process.exit(2);
}
const server = settings.policy === 'scale'
  ? await startEngineGate({ socket: AUTOSCALER_GATE_SOCKET, policy: scaleGatePolicy(settings), log })
  : await startEngineGate({ socket: engineGateSocket(settings.app), policy: edgeGatePolicy(settings.app), log });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    log.info(`${signal}: stopping`);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  });
}
