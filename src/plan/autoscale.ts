import * as z from 'zod';
import { AUTOSCALER_SERVICE, type DeplConfig } from '../config/schema.js';
import { serviceName } from './names.js';
import { suRates } from './service-units.js';
import { stackName } from './stack-name.js';
import { quote } from './shell.js';
import { LABELS, secretMounts, type SecretMount, type ServiceSpec, type SwarmSecretRef } from './services.js';
import { AUTOSCALER_GATE_DIR, autoscaleGateDir, GATES_FOLDER, planAutoscalerGate } from './autoscale-gate.js';

/**
 * Autoscaling on queue depth, as data. Each installed version that has `autoscale:` in its depl.yaml gets a
 * small controller service `<app>-<version>-autoscaler` (src/autoscaler/main.ts) on the manager. It acts only
 * while its version is live (the release document says so), so it follows switches by itself: the old live
 * version's controller goes idle and the new one takes over. Every `interval` it reads the backlog gauge from
 * the version's metrics service and asks `decideScale` what to do; the decision is pure, with time as input.
 *
 *   wanted = clamp(ceil(backlog / targetBacklog), min, max)
 *   up:   to `wanted` as soon as `upCooldown` has passed since the last change (0s: at once);
 *   down: only `cooldown` after the last change, and only to the MOST replicas wanted during the last
 *         `cooldown` (a stabilisation window, as Kubernetes' HPA does): a backlog that dips for a moment
 *         does not make replicas go and come back.
 */

export interface ScalePolicy {
  /** The service's name in depl.yaml. */
  service: string;
  /** Its swarm service in this version: `<app>-<version>-<service>`. */
  swarmService: string;
  min: number;
  max: number;
  targetBacklog: number;
  cooldownMs: number;
  upCooldownMs: number;
  metrics: { url: string; gauge: string; tokenFile?: string };
}

const policySchema = z.object({
  service: z.string().min(1),
  swarmService: z.string().min(1),
  min: z.number().int().min(0),
  max: z.number().int().min(1),
  targetBacklog: z.number().positive(),
  cooldownMs: z.number().min(0),
  upCooldownMs: z.number().min(0),
  metrics: z.object({ url: z.url(), gauge: z.string().min(1), tokenFile: z.string().min(1).optional() }),
});

const poolPolicySchema = z.object({
  pool: z.string().min(1),
  flavor: z.string().min(1),
  min: z.number().int().min(0),
  max: z.number().int().min(0),
  targetBacklog: z.number().positive(),
  /** SU per hour of one node of the flavor; null when the rate table has none. */
  nodeRate: z.number().nonnegative().nullable(),
  idleMs: z.number().min(0),
  upCooldownMs: z.number().min(0),
  /** The backlog is read as the policy of this service (one of the pool's) reads it. */
  service: z.string().min(1),
  /** How long a shrink waits for the nodes that go to drain before Heat removes them (default POOL_DRAIN_GRACE_MS). */
  drainGraceMs: z.number().min(0).optional(),
});
export type PoolPolicySettings = z.infer<typeof poolPolicySchema>;

/** The pools the controller sizes through Heat (provider.pools.<name>.autoscale). */
const poolSettingsSchema = z.object({
  stack: z.string().min(1),
  /** The application credential (a swarm secret's file). */
  credentialFile: z.string().min(1),
  /** SU per hour by flavor: Nectar's rates with provider.serviceUnits.rates over them. */
  rates: z.record(z.string(), z.number().nonnegative()),
  budget: z.object({ suBudget: z.number().nonnegative().optional(), endsOn: z.string().optional() }),
  policies: z.array(poolPolicySchema).min(1),
});
export type PoolSettings = z.infer<typeof poolSettingsSchema>;

/** What the controller is started with (one JSON argument). */
export const controllerSettingsSchema = z.object({
  app: z.string().min(1),
  version: z.string().min(1),
  intervalMs: z.number().int().min(100),
  /** The release document (read-only bind mount of the app's state folder on the manager). */
  releaseFile: z.string().min(1),
  /** Where it keeps what it saw and decided, for `depl status` and for a restarted controller. */
  stateFile: z.string().min(1),
  policies: z.array(policySchema).min(1),
  pools: poolSettingsSchema.optional(),
});
export type ControllerSettings = z.infer<typeof controllerSettingsSchema>;

/** Inside the controller's container. */
export const CONTROLLER_RELEASE_DIR = '/run/depl/release';
export const CONTROLLER_STATE_DIR = '/run/depl/autoscale';
/**
 * The app folder's subfolders the controller must not see: the edge's (TLS certificates and keys), the TLS state
 * (the ACME account key), the cluster lock's lease, branch database seeds (dumps of a database), accessories'
 * restore records, the renewal task's engine gate, and the autoscalers' folder (it has its own state folder
 * mounted; there every version's gate socket is, see below).
 */
export const CONTROLLER_HIDDEN_DIRS = ['edge', 'tls', 'lease', 'seeds', 'accessories', 'edge-gate', 'autoscale'] as const;

/**
 * On the manager, before the controller starts: its state folder, its version's gate folder (0700: the gate's
 * socket), and the folders its mounts hide (a mount needs something to mount over).
 */
export function autoscalerFoldersLine(app: string, version: string, root = '/var/lib/depl'): string {
  const gate = quote(autoscaleGateDir(app, version, root));
  return `mkdir -p ${[...new Set([autoscaleStateDir(app, root), ...CONTROLLER_HIDDEN_DIRS.map((dir) => `${root}/${app}/${dir}`)])].map(quote).join(' ')} && mkdir -p -m 700 ${gate}`;
}

/** On the manager: the app's state folder (release.json) and the controllers' files beside it. */
export function autoscaleStateDir(app: string, root = '/var/lib/depl'): string {
  return `${root}/${app}/autoscale`;
}

export function autoscaleStateFile(app: string, version: string, root = '/var/lib/depl'): string {
  return `${autoscaleStateDir(app, root)}/${version}.json`;
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** A duration as depl.yaml allows it (`500ms`, `30s`, `5m`, `1h`) in milliseconds. */
export function durationMs(text: string): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (match === null) throw new Error(`not a duration: ${text}`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** The controller's settings for one version, from its depl.yaml; null when nothing is autoscaled. */
export function controllerSettings(config: DeplConfig, version: string): ControllerSettings | null {
  const entries = Object.entries(config.autoscale);
  if (entries.length === 0) return null;
  const policies = entries.map(([name, a]): ScalePolicy => {
    const source = a.metrics.service ?? Object.entries(config.services).find(([, s]) => s.http)?.[0];
    const port = source !== undefined ? config.services[source]?.port : undefined;
    if (source === undefined || port === undefined) throw new Error(`autoscale.${name}: no metrics service with a port (the schema checks this)`);
    return {
      service: name,
      swarmService: serviceName(config.app, version, name),
      min: a.min,
      max: a.max,
      targetBacklog: a.targetBacklog,
      cooldownMs: durationMs(a.cooldown),
      upCooldownMs: durationMs(a.upCooldown),
      metrics: {
        url: `http://${serviceName(config.app, version, source)}:${port}${a.metrics.path}`,
        gauge: a.metrics.gauge,
        ...(a.metrics.bearer !== undefined ? { tokenFile: `/run/secrets/${a.metrics.bearer}` } : {}),
      },
    };
  });
  // one controller reads for every policy: the shortest interval asked for
  const intervalMs = Math.min(...entries.map(([, a]) => durationMs(a.interval)));
  const pools = poolSettings(config, policies);
  return {
    app: config.app,
    version,
    intervalMs,
    releaseFile: `${CONTROLLER_RELEASE_DIR}/release.json`,
    stateFile: `${CONTROLLER_STATE_DIR}/${version}.json`,
    policies,
    ...(pools !== undefined ? { pools } : {}),
  };
}

/** The pools with `autoscale:` (openstack only), each reading the backlog as its first autoscaled service does. */
function poolSettings(config: DeplConfig, policies: readonly ScalePolicy[]): PoolSettings | undefined {
  if (config.provider.type !== 'openstack') return undefined;
  const provider = config.provider;
  const rates = suRates(provider.serviceUnits.rates);
  const out: PoolPolicySettings[] = [];
  let credential: string | undefined;
  for (const [pool, p] of Object.entries(provider.pools)) {
    if (p.autoscale === undefined) continue;
    const service = p.services.find((s) => policies.some((policy) => policy.service === s));
    if (service === undefined) throw new Error(`provider.pools.${pool}.autoscale: no autoscaled service (the schema checks this)`);
    // one credential for the stack: the first pool's (the schema lets each name one; they update the same stack)
    credential ??= p.autoscale.credential;
    out.push({
      pool,
      flavor: p.flavor,
      min: p.count.min,
      max: p.count.max,
      targetBacklog: p.autoscale.targetBacklog,
      nodeRate: rates[p.flavor] ?? null,
      idleMs: durationMs(p.autoscale.idle),
      upCooldownMs: durationMs(p.autoscale.upCooldown),
      service,
    });
  }
  if (out.length === 0 || credential === undefined) return undefined;
  return {
    stack: stackName(config),
    credentialFile: `/run/secrets/${credential}`,
    rates,
    budget: { ...(provider.allocation?.suBudget !== undefined ? { suBudget: provider.allocation.suBudget } : {}), ...(provider.allocation?.endsOn !== undefined ? { endsOn: provider.allocation.endsOn } : {}) },
    policies: out,
  };
}

/** The bounds an autoscaled service carries as its `depl.autoscale` label (planVersionServices writes it). */
export function parseAutoscaleLabel(value: string | undefined): { min: number; max: number } | null {
  const match = value === undefined ? null : /^(\d+)-(\d+)$/.exec(value);
  return match === null ? null : { min: Number(match[1]), max: Number(match[2]) };
}

/**
 * The controller as a swarm service of the version: one replica on the manager (the node labelled
 * depl.edge=true, where the release document is), with no Docker socket: it scales through its version's engine
 * gate (planControllerGate), whose socket folder is mounted at AUTOSCALER_GATE_DIR. The app's state folder is
 * read-only (the edge's folder with the TLS keys, the TLS state with the ACME account, the lock's lease, seeds,
 * accessories' records, the renewal task's engine gate and the autoscalers' folder hidden under empty tmpfs), its
 * own state folder writable but the other versions' gate sockets in it hidden, and the secret it sends to the
 * metrics (a metrics-only token, see README).
 */
export function planAutoscaler(input: {
  config: DeplConfig;
  version: string;
  image: string;
  network: string;
  secrets?: Record<string, SwarmSecretRef>;
  branch?: string;
  stateRoot?: string;
}): ServiceSpec | null {
  const { config, version } = input;
  const settings = controllerSettings(config, version);
  if (settings === null) return null;
  const poolCredentials = config.provider.type === 'openstack' ? Object.values(config.provider.pools).flatMap((p) => (p.autoscale !== undefined ? [p.autoscale.credential] : [])) : [];
  const secretNames = [...new Set([...Object.values(config.autoscale).flatMap((a) => (a.metrics.bearer !== undefined ? [a.metrics.bearer] : [])), ...poolCredentials])];
  return controllerServiceSpec({
    settings, image: input.image, network: input.network, secrets: secretMounts(secretNames, input.secrets ?? {}, AUTOSCALER_SERVICE),
    ...(input.branch !== undefined ? { branch: input.branch } : {}), root: input.stateRoot ?? '/var/lib/depl',
  });
}

/** The controller's service from its settings (planAutoscaler; src/plan/autoscale-upgrade.ts from an earlier spec's). */
export function controllerServiceSpec(input: { settings: ControllerSettings; image: string; network: string; secrets: SecretMount[]; branch?: string; root: string }): ServiceSpec {
  const { settings, root } = input;
  const { app, version } = settings;
  const labels = {
    [LABELS.app]: app,
    [LABELS.version]: version,
    [LABELS.service]: AUTOSCALER_SERVICE,
    [LABELS.http]: 'false',
    ...(input.branch !== undefined ? { [LABELS.branch]: input.branch } : {}),
  };
  const policy = { Parallelism: 1, Delay: 0, FailureAction: 'pause' as const, Monitor: 5_000_000_000, Order: 'stop-first' as const };
  return {
    Name: serviceName(app, version, AUTOSCALER_SERVICE),
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: input.image,
        Command: ['node', '/opt/depl/autoscaler.mjs'],
        Args: ['--settings', JSON.stringify(settings)],
        Labels: { [LABELS.app]: app, [LABELS.version]: version, [LABELS.service]: AUTOSCALER_SERVICE },
        StopGracePeriod: 5_000_000_000,
        StopSignal: 'SIGTERM',
        Mounts: [
          { Type: 'bind', Source: `${root}/${app}`, Target: CONTROLLER_RELEASE_DIR, ReadOnly: true },
          // the edge's folder holds the TLS keys, tls/ the ACME account, seeds/ database dumps: empty tmpfs hide them (buildinst makes sure they exist to mount over)
          ...CONTROLLER_HIDDEN_DIRS.map((dir) => ({ Type: 'tmpfs' as const, Target: `${CONTROLLER_RELEASE_DIR}/${dir}`, TmpfsOptions: { SizeBytes: 4096, Mode: 0o500 } })),
          { Type: 'bind', Source: autoscaleStateDir(app, root), Target: CONTROLLER_STATE_DIR },
          // every version's gate socket is under its state folder: an empty tmpfs hides them, and its own is mounted apart
          { Type: 'tmpfs', Target: `${CONTROLLER_STATE_DIR}/${GATES_FOLDER}`, TmpfsOptions: { SizeBytes: 4096, Mode: 0o500 } },
          { Type: 'bind', Source: autoscaleGateDir(app, version, root), Target: AUTOSCALER_GATE_DIR },
        ],
        ...(input.secrets.length > 0 ? { Secrets: input.secrets } : {}),
      },
      RestartPolicy: { Condition: 'any', Delay: 2_000_000_000, MaxAttempts: 0, Window: 0 },
      Placement: { Constraints: ['node.labels.depl.edge==true'] },
      Networks: [{ Target: input.network }],
    },
    Mode: { Replicated: { Replicas: 1 } },
    UpdateConfig: policy,
    RollbackConfig: policy,
    EndpointSpec: { Mode: 'dnsrr' },
  };
}

/**
 * The controller's engine gate (src/plan/autoscale-gate.ts): the version's autoscaled services and their bounds
 * from the same settings the controller gets; null when nothing is autoscaled.
 */
export function planControllerGate(input: { config: DeplConfig; version: string; image: string; branch?: string; stateRoot?: string }): ServiceSpec | null {
  const settings = controllerSettings(input.config, input.version);
  if (settings === null) return null;
  return controllerGateSpec({ settings, image: input.image, ...(input.branch !== undefined ? { branch: input.branch } : {}), ...(input.stateRoot !== undefined ? { root: input.stateRoot } : {}) });
}

/** The gate of the controller with these settings. */
export function controllerGateSpec(input: { settings: ControllerSettings; image: string; branch?: string; root?: string }): ServiceSpec {
  const { settings } = input;
  return planAutoscalerGate({
    app: settings.app, version: settings.version, image: input.image,
    services: settings.policies.map((p) => ({ name: p.swarmService, min: p.min, max: p.max })),
    pools: (settings.pools?.policies ?? []).map((p) => p.pool),
    ...(input.branch !== undefined ? { branch: input.branch } : {}),
    ...(input.root !== undefined ? { stateRoot: input.root } : {}),
  });
}

// ---- the decision --------------------------------------------------------------------------------------------

/** What a controller remembers between two readings (and across its restarts, in its state file). */
export interface ScaleMemory {
  /** When replicas last changed (epoch ms): by this controller, or when it took over. */
  lastChangeAt: number;
  /** Replicas the backlog asked for (bounded), newest last, over the last cooldown. */
  wanted: { at: number; replicas: number }[];
}

export interface ScaleObservation {
  /** Epoch ms of this reading. */
  now: number;
  /** The service's replicas as the swarm has them. */
  current: number;
  /** The gauge's value; null when the metrics could not be read. */
  backlog: number | null;
}

export interface ScaleDecision {
  action: 'up' | 'down' | 'hold';
  from: number;
  to: number;
  /** clamp(ceil(backlog / targetBacklog), min, max) for this reading; null without a backlog. */
  wanted: number | null;
  reason: string;
  memory: ScaleMemory;
}

/** A controller that starts controlling (its version became live, or it restarted without a memory). */
export function startMemory(now: number): ScaleMemory {
  return { lastChangeAt: now, wanted: [] };
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;

export function decideScale(policy: Pick<ScalePolicy, 'min' | 'max' | 'targetBacklog' | 'cooldownMs' | 'upCooldownMs'>, memory: ScaleMemory, observation: ScaleObservation): ScaleDecision {
  const { now, current, backlog } = observation;
  const clamp = (n: number) => Math.min(policy.max, Math.max(policy.min, n));
  const since = now - memory.lastChangeAt;
  const change = (to: number, reason: string, wanted: number | null, window: ScaleMemory['wanted']): ScaleDecision => ({
    action: to > current ? 'up' : 'down', from: current, to, wanted, reason, memory: { lastChangeAt: now, wanted: window },
  });
  const hold = (reason: string, wanted: number | null, window: ScaleMemory['wanted']): ScaleDecision => ({
    action: 'hold', from: current, to: current, wanted, reason, memory: { lastChangeAt: memory.lastChangeAt, wanted: window },
  });
  const recent = memory.wanted.filter((w) => now - w.at < policy.cooldownMs && w.at <= now);

  if (backlog === null || !Number.isFinite(backlog) || backlog < 0) {
    // without a reading nothing moves, except back inside the bounds
    if (current < policy.min || current > policy.max) return change(clamp(current), `${current} replicas is outside ${policy.min}..${policy.max} (no backlog reading)`, null, recent);
    return hold('no backlog reading', null, recent);
  }
  const wanted = clamp(Math.ceil(backlog / policy.targetBacklog));
  const window = [...recent, { at: now, replicas: wanted }];
  const asked = `backlog ${backlog} / ${policy.targetBacklog} per replica`;
  if (current < policy.min) return change(Math.max(wanted, policy.min), `${current} replicas is below min ${policy.min}; ${asked}`, wanted, window);
  if (current > policy.max) return change(policy.max, `${current} replicas is above max ${policy.max}`, wanted, window);
  if (wanted > current) {
    if (since < policy.upCooldownMs) return hold(`${asked} wants ${wanted}; scale-up waits ${seconds(policy.upCooldownMs - since)} more`, wanted, window);
    return change(wanted, `${asked} wants ${wanted}`, wanted, window);
  }
  if (wanted < current) {
    if (since < policy.cooldownMs) return hold(`${asked} wants ${wanted}; cooldown: ${seconds(policy.cooldownMs - since)} left since the last change`, wanted, window);
    const highest = Math.max(...window.map((w) => w.replicas));
    if (highest >= current) return hold(`${asked} wants ${wanted}, but ${highest} was wanted within the last ${seconds(policy.cooldownMs)}`, wanted, window);
    return change(highest, `${asked} wants ${wanted}; ${highest} is the most wanted within the last ${seconds(policy.cooldownMs)}`, wanted, window);
  }
  return hold(`${asked} wants ${wanted}`, wanted, window);
}

/**
 * The value of a gauge in Prometheus' text format (version 0.0.4): the sum of its samples (one without
 * labels for the crawler's gauges), or null when the text has none or one that is not a number.
 */
export function parseGauge(text: string, name: string): number | null {
  let sum: number | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!line.startsWith(name)) continue;
    let rest = line.slice(name.length);
    if (rest.startsWith('{')) {
      const end = rest.indexOf('}');
      if (end < 0) continue;
      rest = rest.slice(end + 1);
    } else if (!/^\s/.test(rest)) {
      continue; // another metric whose name starts with this one
    }
    const value = Number(rest.trim().split(/\s+/)[0]);
    if (!Number.isFinite(value)) return null;
    sum = (sum ?? 0) + value;
  }
  return sum;
}

// ---- what the controller records, and depl status shows --------------------------------------------------------

const decisionSchema = z.object({
  at: z.string(),
  action: z.enum(['up', 'down', 'hold']),
  from: z.number(),
  to: z.number(),
  backlog: z.number().nullable(),
  reason: z.string(),
});
export type RecordedDecision = z.infer<typeof decisionSchema>;

const serviceStateSchema = z.object({
  service: z.string(),
  swarmService: z.string(),
  min: z.number(),
  max: z.number(),
  replicas: z.number().nullable(),
  backlog: z.number().nullable(),
  observedAt: z.string(),
  /** The last change of replicas (not a hold). */
  lastChange: decisionSchema.nullable(),
  /** The last reading's verdict, hold included. */
  last: decisionSchema,
  /** The most recent changes, newest last. */
  changes: z.array(decisionSchema),
  memory: z.object({ lastChangeAt: z.number(), wanted: z.array(z.object({ at: z.number(), replicas: z.number() })) }),
  error: z.string().optional(),
});
export type AutoscaleServiceState = z.infer<typeof serviceStateSchema>;

/** A pool the controller sizes: what it read from the stack and what it last decided and asked of Heat. */
const poolStateSchema = z.object({
  pool: z.string(),
  min: z.number(),
  max: z.number(),
  count: z.number().nullable(),
  lost: z.array(z.string()),
  backlog: z.number().nullable(),
  observedAt: z.string(),
  last: z.object({ at: z.string(), action: z.enum(['grow', 'shrink', 'recreate', 'hold']), from: z.number(), to: z.number(), reason: z.string() }),
  /** What the last change asked of Heat (a stack update, a stack check), or that Heat was busy. */
  asked: z.string().optional(),
  memory: z.object({ lastChangeAt: z.number(), emptySince: z.number().nullable() }),
  /** A shrink under way: the pool's nodes at index `to` and above were drained at `since` (src/plan/pool-drain.ts). */
  draining: z.object({ since: z.number(), to: z.number() }).optional(),
  error: z.string().optional(),
});
export type PoolState = z.infer<typeof poolStateSchema>;

export const controllerStateSchema = z.object({
  version: z.string(),
  live: z.boolean(),
  updatedAt: z.string(),
  services: z.record(z.string(), serviceStateSchema),
  pools: z.record(z.string(), poolStateSchema).optional(),
});
export type ControllerState = z.infer<typeof controllerStateSchema>;

export const CHANGES_KEPT = 20;

/** The state after one reading of one service. */
export function recordReading(
  previous: AutoscaleServiceState | undefined,
  policy: ScalePolicy,
  observation: ScaleObservation,
  decision: ScaleDecision,
  error?: string,
): AutoscaleServiceState {
  const at = new Date(observation.now).toISOString();
  const recorded: RecordedDecision = { at, action: decision.action, from: decision.from, to: decision.to, backlog: observation.backlog, reason: decision.reason };
  const changed = decision.action !== 'hold';
  return {
    service: policy.service,
    swarmService: policy.swarmService,
    min: policy.min,
    max: policy.max,
    replicas: decision.to,
    backlog: observation.backlog,
    observedAt: at,
    lastChange: changed ? recorded : (previous?.lastChange ?? null),
    last: recorded,
    changes: changed ? [...(previous?.changes ?? []), recorded].slice(-CHANGES_KEPT) : (previous?.changes ?? []),
    memory: decision.memory,
    ...(error !== undefined ? { error } : {}),
  };
}

export function parseControllerState(value: unknown): ControllerState | null {
  const result = controllerStateSchema.safeParse(value);
  return result.success ? result.data : null;
}

/** `depl status`'s autoscale lines. */
export function describeAutoscale(state: ControllerState | null, now: number): string[] {
  if (state === null) return [];
  const pools = Object.values(state.pools ?? {}).map((p) => {
    const ago = Math.max(0, Math.round((now - Date.parse(p.observedAt)) / 1000));
    const lost = p.lost.length > 0 ? `, ${p.lost.length} gone (${p.lost.join(', ')})` : '';
    return `pool ${p.pool}: ${p.count ?? '?'} nodes (${p.min}..${p.max})${lost}, backlog ${p.backlog ?? 'unknown'} read ${ago}s ago; ${p.last.action}: ${p.last.reason}${p.asked !== undefined ? `; ${p.asked}` : ''}${p.error !== undefined ? `; error: ${p.error}` : ''}`;
  });
  return [...Object.values(state.services).map((s) => {
    const ago = (iso: string) => `${Math.max(0, Math.round((now - Date.parse(iso)) / 1000))}s ago`;
    const last = s.lastChange === null ? 'no change yet' : `last ${s.lastChange.action} ${s.lastChange.from}->${s.lastChange.to} ${ago(s.lastChange.at)} (${s.lastChange.reason})`;
    return `${s.service}: ${s.replicas ?? '?'} replicas (${s.min}..${s.max}), backlog ${s.backlog ?? 'unknown'} read ${ago(s.observedAt)}; ${last}${s.error !== undefined ? `; error: ${s.error}` : ''}`;
  }), ...pools];
}
