/**
 * One request an engine gate received (src/engine-gate/): the gate program holds a manager's Docker socket for a
 * program on the cluster that must not (the TLS renewal task, an autoscale controller), and each of its
 * policies (src/plan/tls/engine-gate.ts, src/plan/autoscale-gate.ts) decides such requests as data.
 */
export interface GateRequest {
  method: string;
  /** The path with its query, as sent (`/containers/json?filters=...`). */
  path: string;
  body: string;
}
