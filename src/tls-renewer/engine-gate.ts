import { engineGateSocket } from '../plan/tls/engine-gate.js';
import { createLogger } from '../util/log.js';
import { startEngineGate } from './gate-server.js';

/**
 * The engine gate's program (a swarm service beside the TLS renewal task, installed with it by depl buildinst;
 * src/plan/tls/engine-gate.ts says what it allows and why): it holds the Docker socket so the task does not.
 */
const settings = JSON.parse(process.env.DEPL_ENGINE_GATE ?? 'null') as { app: string } | null;
const base = createLogger({ color: false });
const stamp = (m: string) => `${new Date().toISOString()} ${m}`;
const log = { info: (m: string) => base.info(stamp(m)), warn: (m: string) => base.warn(stamp(m)) };

if (settings === null || !/^[a-z0-9-]+$/.test(settings.app)) {
  log.warn('DEPL_ENGINE_GATE is not set: this task is started by depl buildinst with its settings');
  process.exit(2);
}
const server = await startEngineGate({ app: settings.app, socket: engineGateSocket(settings.app), log });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    log.info(`${signal}: stopping`);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  });
}
