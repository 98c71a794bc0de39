import type { ServiceSpec } from './services.js';

type Mount = NonNullable<ServiceSpec['TaskTemplate']['ContainerSpec']['Mounts']>[number];

/**
 * The swarm service of an engine gate (src/engine-gate/), whichever program it serves: one replica on the
 * manager (the edge node, where the Docker socket is the swarm's), with the socket and the mounts the caller
 * names, no network, updated stop-first (two gates on one socket path would fight over it). Its settings go in
 * DEPL_ENGINE_GATE, which chooses its one policy.
 */
export function engineGateServiceSpec(options: {
  name: string;
  labels: Record<string, string>;
  containerLabels?: Record<string, string>;
  image: string;
  program: string;
  settings: unknown;
  /** Its own mounts (its socket folder, its code); the Docker socket is added last. */
  mounts: Mount[];
}): ServiceSpec {
  const policy = { Parallelism: 1, Delay: 0, FailureAction: 'pause' as const, Monitor: 5_000_000_000, Order: 'stop-first' as const };
  return {
    Name: options.name,
    Labels: options.labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: options.image,
        Command: ['node', options.program],
        Env: [`DEPL_ENGINE_GATE=${JSON.stringify(options.settings)}`, 'NODE_ENV=production'],
        Labels: options.containerLabels ?? options.labels,
        StopGracePeriod: 5_000_000_000,
        StopSignal: 'SIGTERM',
        Mounts: [...options.mounts, { Type: 'bind', Source: '/var/run/docker.sock', Target: '/var/run/docker.sock' }],
      },
      RestartPolicy: { Condition: 'any', Delay: 2_000_000_000, MaxAttempts: 0, Window: 0 },
      Placement: { Constraints: ['node.labels.depl.edge==true'] },
      Networks: [],
    },
    Mode: { Replicated: { Replicas: 1 } },
    UpdateConfig: policy,
    RollbackConfig: policy,
    EndpointSpec: { Mode: 'dnsrr' },
  };
}
