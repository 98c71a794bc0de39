import * as z from 'zod';
import type { ErrorCode } from '../error-codes.js';
import { consumerHandover, consumersOnly, type ConsumerHandover } from './consumers.js';
import { describeScale, MAX_REPLICAS, type ScaleTarget } from './scale.js';

/**
 * The ONE release state of an app: what is live, what was live before, the canary and its weight, the
 * app's scale (replicas set with `depl scale`), the history of changes and the generation of the edge
 * configuration rendered from it. It is one JSON document on the manager (src/apply/release-store.ts),
 * validated with `releaseDocumentSchema` on every read. Which versions are INSTALLED is not recorded here:
 * the swarm's service labels say that (src/plan/releases.ts), so two operators always see the same list.
 *
 * Every change is a pure transition `(state, request, facts) -> { state } | { refusal }` (planRelease).
 * The edge's routing facts (`Routing`) and from them the nginx text are derived from the result, so a
 * dry run can show both without touching anything.
 */

// ---- routing facts: what the edge serves (the input of src/plan/nginx.ts and of any other edge) -------------

/** Where the edge sends a version's traffic. */
export interface Upstream {
  /** Swarm service name, resolved through Docker's DNS on the overlay network (dnsrr). */
  service: string;
  port: number;
  /**
   * `host:port` (an IPv4 address or a DNS name) to proxy to instead of `service:port` through Docker's DNS:
   * for an edge that is not on the overlay network (the loopback nginx of the integration tests).
   */
  address?: string;
}

export interface RoutedVersion {
  label: string;
  /** The version's http service (the one with `http: true`). */
  upstream: Upstream;
}

/** Everything an edge needs to route: every version at `<label>.<domain>`, live (and a canary share) at `<domain>`. */
export interface Routing {
  app: string;
  domain: string;
  versions: RoutedVersion[];
  /** Served at <domain>. */
  live?: string;
  /** A share of <domain>'s traffic, split by a stable client key. */
  canary?: { version: string; weight: number };
}

// ---- installed versions (from the swarm's labels) -----------------------------------------------------------

export interface InstalledVersion {
  label: string;
  createdAt: string;
  branch?: string;
  services: string[];
  /** The service reached through the edge, if the version has one. */
  http?: { service: string; port: number; health?: string; address?: string };
  /** Desired replicas by swarm service name, as the swarm has them (absent when not read). */
  replicas?: Record<string, number>;
  /** A consumers-only app's services: their replicas while the version is live (the `depl.replicas` label). */
  wanted?: Record<string, number>;
  /** Its stateful services (the `depl.volume` label): swarm service name -> the named volume one version at a time runs. */
  stateful?: Record<string, string>;
}

// ---- the document ---------------------------------------------------------------------------------------------

export const HISTORY_ACTIONS = ['install', 'switch', 'rollback', 'canary', 'promote', 'abort', 'prune', 'scale', 'repair', 'release'] as const;
export type HistoryAction = (typeof HISTORY_ACTIONS)[number];

const historyEntrySchema = z.object({
  at: z.string(),
  action: z.enum(HISTORY_ACTIONS),
  version: z.string().nullable(),
  weight: z.number().optional(),
  by: z.string(),
  note: z.string().optional(),
  /** A release phase (action `release`): its command's exit code; null when it timed out or never ran. */
  exitCode: z.number().int().nullable().optional(),
});

const canarySchema = z.object({ version: z.string().min(1), weight: z.number().min(0).max(100) });

const releaseStateSchema = z.object({
  app: z.string().min(1),
  live: z.string().min(1).nullable(),
  previous: z.string().min(1).nullable(),
  canary: canarySchema.nullable(),
  /**
   * The app's scale: replicas by service name (`worker`), set with `depl scale` on the live version. It outlives
   * versions: every version installed afterwards is created with it, and a version that becomes live (switch,
   * rollback, promote) is brought to it. Services not named here run depl.yaml's `replicas`.
   */
  scale: z.record(z.string(), z.number().int().min(0).max(MAX_REPLICAS)),
  history: z.array(historyEntrySchema),
  /** The generation (src/plan/nginx.ts configGeneration) of the edge configuration rendered from this state. */
  edge: z.object({ generation: z.string().nullable() }),
});

/**
 * On disk: the committed state, plus the change in flight. A change is written as `pending` BEFORE the edge
 * is touched and committed after the edge serves it; a depl that died in between leaves `pending` behind,
 * and `resolvePending` decides from the generation the edge actually serves which of the two is true.
 */
export const releaseDocumentSchema = releaseStateSchema.extend({
  schema: z.literal(1),
  pending: z.object({ next: releaseStateSchema, generation: z.string(), command: z.string() }).nullable(),
});

export type HistoryEntry = z.infer<typeof historyEntrySchema>;
export type ReleaseState = z.infer<typeof releaseStateSchema>;
export type ReleaseDocument = z.infer<typeof releaseDocumentSchema>;
export type PendingChange = NonNullable<ReleaseDocument['pending']>;

export const HISTORY_KEPT = 200;

export function emptyReleaseState(app: string): ReleaseState {
  return { app, live: null, previous: null, canary: null, scale: {}, history: [], edge: { generation: null } };
}

export function toDocument(state: ReleaseState, pending: PendingChange | null = null): ReleaseDocument {
  return { schema: 1, ...state, history: state.history.slice(-HISTORY_KEPT), pending };
}

export function stateOf(doc: ReleaseDocument): ReleaseState {
  const { schema: _schema, pending: _pending, ...state } = doc;
  return state;
}

/** A document whose text passed JSON.parse; null with the first problem when it is not a release document. */
export function parseReleaseDocument(value: unknown): { ok: true; doc: ReleaseDocument } | { ok: false; problem: string } {
  const result = releaseDocumentSchema.safeParse(value);
  if (result.success) return { ok: true, doc: result.data };
  const issue = result.error.issues[0];
  return { ok: false, problem: issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'bad shape' };
}

// ---- transitions ---------------------------------------------------------------------------------------------

export type ReleaseRequest =
  /** `note` replaces the history's default note (`branch <name>, redeployed`). */
  | { kind: 'install'; version: string; branch?: string; services?: string[]; http?: InstalledVersion['http']; note?: string }
  | { kind: 'remove'; version: string; note?: string }
  | { kind: 'switch'; version: string }
  | { kind: 'rollback' }
  | { kind: 'canary'; version: string; weight: number }
  | { kind: 'promote' }
  | { kind: 'abort'; note?: string }
  | { kind: 'prune'; keep: number }
  /** A version's release phase ran (buildinst): its outcome joins the history; nothing else changes. */
  | { kind: 'release'; version: string; exitCode: number | null; note: string }
  /** Replicas by service name, of the live version or of `version`; only the live version's are recorded as the app's scale. */
  | { kind: 'scale'; replicas: Record<string, number>; version?: string };

/** What the transitions may know about the world: passed in, never looked up. */
export interface ReleaseFacts {
  installed: InstalledVersion[];
  /** ISO time of the change. */
  at: string;
  /** `user@host` of the operator. */
  by: string;
}

/** Why a request is refused; the workflow turns it into a UserError (exit 2, nothing changed). */
export interface Refusal {
  code: ErrorCode;
  message: string;
  hint?: string;
}

export interface PrunePlan {
  remove: InstalledVersion[];
  keep: { label: string; why: 'live' | 'canary' | 'previous' | 'recent' }[];
}

export type Planned =
  | {
    ok: true; state: ReleaseState; installed: InstalledVersion[]; prune?: PrunePlan; unchanged?: boolean;
    /** Services to bring to their replicas (a scale; a switch to a version not at the app's scale), before the edge changes. */
    scale?: ScaleTarget[];
    /**
     * A consumers-only app's switch (src/plan/consumers.ts): the new live version's consumers to start (and await)
     * before the change is recorded, the others' to stop; both are also in `scale`.
     */
    consumers?: ConsumerHandover;
  }
  | { ok: false; refusal: Refusal };

export function planRelease(state: ReleaseState, request: ReleaseRequest, facts: ReleaseFacts): Planned {
  switch (request.kind) {
    case 'install': return planInstall(state, request, facts);
    case 'remove': return planRemove(state, request, facts);
    case 'switch': return planSwitch(state, request.version, 'switch', facts);
    case 'rollback': return planRollback(state, facts);
    case 'canary': return planCanary(state, request, facts);
    case 'promote': return planPromote(state, facts);
    case 'abort': return planAbort(state, request.note, facts);
    case 'prune': return planPruneTransition(state, request.keep, facts);
    case 'scale': return planScale(state, request, facts);
    case 'release': return { ok: true, installed: facts.installed, state: { ...state, history: [...state.history, entry(facts, 'release', request.version, { note: request.note, exitCode: request.exitCode })] } };
  }
}

const refuse = (code: ErrorCode, message: string, hint?: string): Planned => ({ ok: false, refusal: { code, message, ...(hint !== undefined ? { hint } : {}) } });

function entry(facts: ReleaseFacts, action: HistoryAction, version: string | null, extra: Partial<HistoryEntry> = {}): HistoryEntry {
  return { at: facts.at, action, version, by: facts.by, ...extra };
}

function requireRoutable(version: string, facts: ReleaseFacts): Planned | null {
  const found = facts.installed.find((v) => v.label === version);
  if (found === undefined) {
    return refuse('NOT_INSTALLED',
      `version "${version}" is not installed (installed: ${facts.installed.map((v) => v.label).join(', ') || 'none'})`,
      `Run \`depl versions\` to list them, or \`depl buildinst --version ${version}\` to install it.`);
  }
  // an app made of queue consumers only: live is the version whose consumers run (src/plan/consumers.ts)
  if (found.http === undefined && !consumersOnly(facts.installed)) {
    return refuse('NOT_ROUTABLE', `version "${version}" has no http service, so the edge cannot serve it`, 'Mark one service `http: true` in depl.yaml and install a new version.');
  }
  return null;
}

/**
 * A new version (or a branch redeploy) is installed: it joins the installed versions (the edge serves it at
 * <version>.<domain>) and the history; never changes live traffic. Checked before anything is built, and
 * again with the version's services once they run.
 *
 * A branch redeploy replaces the version in place, so it is refused unless that version is the same branch's
 * own deploy (not another branch's whose label is the same, not a `--version` install), and unless it is none
 * of live, canary and previous: a rollback must find the previous version as it was.
 */
export function planInstall(state: ReleaseState, request: { version: string; branch?: string; services?: string[]; http?: InstalledVersion['http']; note?: string }, facts: ReleaseFacts): Planned {
  const existing = facts.installed.find((v) => v.label === request.version);
  if (existing !== undefined && request.branch === undefined) {
    return refuse('VERSION_EXISTS', `version ${request.version} is already installed`, 'Choose another --version, or remove it first with `depl prune`.');
  }
  if (existing !== undefined) {
    const refusal = refuseBranchRedeploy(state, existing, request.branch!);
    if (refusal !== null) return refusal;
  }
  const version: InstalledVersion = {
    label: request.version,
    createdAt: existing?.createdAt ?? facts.at,
    services: request.services ?? existing?.services ?? [],
    ...(request.branch !== undefined ? { branch: request.branch } : {}),
    ...(request.http !== undefined ? { http: request.http } : {}),
  };
  const installed = [...facts.installed.filter((v) => v.label !== request.version), version];
  const note = request.note ?? (request.branch !== undefined ? `branch ${request.branch}${existing !== undefined ? ', redeployed' : ''}` : undefined);
  return { ok: true, installed, state: { ...state, history: [...state.history, entry(facts, 'install', request.version, note !== undefined ? { note } : {})] } };
}

/** Why `branch` may not redeploy over the installed version `existing` (its label), or null when it may. */
function refuseBranchRedeploy(state: ReleaseState, existing: InstalledVersion, branch: string): Planned | null {
  const label = existing.label;
  if (existing.branch === undefined) {
    return refuse('VERSION_NOT_BRANCH',
      `branch "${branch}" deploys to version ${label}, which was installed with --version ${label}, not by a branch deploy; a branch deploy only replaces its own`,
      `Rename the branch, or remove version ${label} first (\`depl prune --keep <n>\` removes the oldest versions).`);
  }
  if (existing.branch !== branch) {
    return refuse('VERSION_OTHER_BRANCH',
      `branch "${branch}" deploys to version ${label}, which belongs to branch "${existing.branch}"; a branch deploy only replaces its own`,
      `Rename one of the two branches, or remove ${label} first: \`depl prune --branches <the branches that exist>\` removes the deploys of deleted branches.`);
  }
  if (state.live === label || state.canary?.version === label) {
    return refuse('VERSION_LIVE',
      `branch ${branch} (version ${label}) is ${state.live === label ? 'live' : 'the canary'}; buildinst never changes what serves live traffic`,
      'Switch live to another version first (depl switch / depl canary --abort), then redeploy the branch.');
  }
  if (state.previous === label) {
    return refuse('VERSION_PREVIOUS',
      `branch ${branch} (version ${label}) is the previous version, the one \`depl rollback\` returns to; buildinst never changes the rollback target`,
      `Redeploy the branch once ${label} is no longer the previous version (after the next switch), or deploy the change from another branch.`);
  }
  return null;
}

/** A version that failed to install leaves the installed versions (and the edge); never live, canary or previous. */
export function planRemove(state: ReleaseState, request: { version: string; note?: string }, facts: ReleaseFacts): Planned {
  const role = state.live === request.version ? 'live' : state.canary?.version === request.version ? 'the canary' : state.previous === request.version ? 'the previous version' : null;
  if (role !== null) return refuse('VERSION_IN_USE', `version ${request.version} is ${role}; it cannot be removed`, 'Switch, abort the canary or prune instead.');
  return {
    ok: true,
    installed: facts.installed.filter((v) => v.label !== request.version),
    state: { ...state, history: [...state.history, entry(facts, 'prune', request.version, request.note !== undefined ? { note: request.note } : {})] },
  };
}

/** `version` becomes live for everyone; the canary (if any) ends; the old live becomes previous. */
export function planSwitch(state: ReleaseState, version: string, action: 'switch' | 'rollback' | 'promote', facts: ReleaseFacts): Planned {
  const missing = requireRoutable(version, facts);
  if (missing) return missing;
  const previous = state.live !== null && state.live !== version ? state.live : state.previous === version ? null : state.previous;
  const next: ReleaseState = {
    ...state,
    live: version,
    previous,
    canary: null,
    // The app's scale outlives the switch: the version that becomes live is brought to it (scaleTargets).
    history: [...state.history, entry(facts, action, version, state.live !== null ? { note: `was ${state.live}` } : {})],
  };
  const target = facts.installed.find((v) => v.label === version)!;
  if (consumersOnly(facts.installed)) {
    // after a canary (promote, or a switch during one) every live consumer goes back to its full replicas
    const consumers = consumerHandover(version, facts.installed, state.scale, null, state.canary !== null);
    const scale = [...consumers.start, ...consumers.stop];
    const unchanged = state.live === version && state.canary === null && scale.length === 0;
    return { ok: true, state: next, installed: withAllReplicas(facts.installed, scale), unchanged, ...(scale.length > 0 ? { scale, consumers } : {}) };
  }
  const scale = scaleTargets(state.app, target, state.scale);
  const unchanged = state.live === version && state.canary === null && scale.length === 0;
  return { ok: true, state: next, installed: withReplicas(facts.installed, version, scale), unchanged, ...(scale.length > 0 ? { scale } : {}) };
}

/** The installed versions with every targeted service (of any version) at its target's replicas. */
function withAllReplicas(installed: InstalledVersion[], targets: ScaleTarget[]): InstalledVersion[] {
  return installed.reduce((acc, v) => withReplicas(acc, v.label, targets.filter((t) => v.services.includes(t.service))), installed);
}

/** The installed versions with `label`'s services at the targets' replicas. */
function withReplicas(installed: InstalledVersion[], label: string, targets: ScaleTarget[]): InstalledVersion[] {
  if (targets.length === 0) return installed;
  return installed.map((v) => (v.label === label ? { ...v, replicas: { ...v.replicas, ...Object.fromEntries(targets.map((t) => [t.service, t.replicas])) } } : v));
}

/**
 * The services of `version` whose replicas differ from `replicas` (by service name), as scale targets. A
 * service the version lacks is skipped (it was added to depl.yaml later); unknown current replicas count as
 * different (setting them is idempotent).
 */
export function scaleTargets(app: string, version: InstalledVersion, replicas: Record<string, number>): ScaleTarget[] {
  return Object.entries(replicas)
    .map(([name, n]) => scaleTarget(app, version, name, n))
    .filter((t) => version.services.includes(t.service) && t.from !== t.replicas);
}

/** Service `name` of `version` to `replicas`, with what the swarm has now when known. */
function scaleTarget(app: string, version: InstalledVersion, name: string, replicas: number): ScaleTarget {
  const service = `${app}-${version.label}-${name}`;
  const from = version.replicas?.[service];
  return { service, replicas, ...(from !== undefined ? { from } : {}) };
}

export function planRollback(state: ReleaseState, facts: ReleaseFacts): Planned {
  if (state.previous === null) return refuse('NO_PREVIOUS', 'there is no previous live version to roll back to', 'Use `depl switch <version>` to choose one.');
  return planSwitch(state, state.previous, 'rollback', facts);
}

export function planCanary(state: ReleaseState, request: { version: string; weight: number }, facts: ReleaseFacts): Planned {
  const { version, weight } = request;
  if (!Number.isFinite(weight) || weight < 0 || weight > 100) return refuse('BAD_WEIGHT', `canary weight ${weight} is outside 0..100`, 'Give a percentage like --weight 10.');
  if (state.live === null) return refuse('NO_LIVE', 'nothing is live yet, so there is no traffic to split', 'Make a version live first: depl switch <version>.');
  if (state.live === version) return refuse('CANARY_IS_LIVE', `version ${version} is already live`, 'A canary is a version other than the live one.');
  if (weight === 0) return planAbort(state, undefined, facts);
  const missing = requireRoutable(version, facts);
  if (missing) return missing;
  if (consumersOnly(facts.installed)) {
    // a consumers-only app's canary is a share of its consumer replicas (src/plan/consumers.ts canaryReplicas)
    const consumers = consumerHandover(state.live, facts.installed, state.scale, { version, weight });
    const scale = [...consumers.start, ...consumers.stop];
    return {
      ok: true, installed: withAllReplicas(facts.installed, scale),
      state: { ...state, canary: { version, weight }, history: [...state.history, entry(facts, 'canary', version, { weight })] },
      ...(scale.length > 0 ? { scale, consumers } : {}),
    };
  }
  if (facts.installed.find((v) => v.label === version)?.http === undefined) {
    return refuse('NOT_ROUTABLE', `version "${version}" has no http service: a canary splits HTTP traffic`, `Switch to it (depl switch ${version}) instead.`);
  }
  return {
    ok: true,
    installed: facts.installed,
    state: { ...state, canary: { version, weight }, history: [...state.history, entry(facts, 'canary', version, { weight })] },
  };
}

export function planPromote(state: ReleaseState, facts: ReleaseFacts): Planned {
  if (state.canary === null) return refuse('NO_CANARY', 'no canary is running', 'Start one with `depl canary <version> --weight <pct>`.');
  return planSwitch(state, state.canary.version, 'promote', facts);
}

export function planAbort(state: ReleaseState, note: string | undefined, facts: ReleaseFacts): Planned {
  if (state.live === null) return refuse('NO_LIVE', 'nothing is live yet', 'Make a version live first: depl switch <version>.');
  if (state.canary === null) return refuse('NO_CANARY', 'no canary is running', `All of the traffic already goes to ${state.live}.`);
  const next: ReleaseState = { ...state, canary: null, history: [...state.history, entry(facts, 'abort', state.canary.version, note !== undefined ? { note } : {})] };
  if (consumersOnly(facts.installed)) {
    // the canary's consumers stop; live's go back to their full replicas
    const consumers = consumerHandover(state.live, facts.installed, state.scale, null, true);
    const scale = [...consumers.start, ...consumers.stop];
    return { ok: true, installed: withAllReplicas(facts.installed, scale), state: next, ...(scale.length > 0 ? { scale, consumers } : {}) };
  }
  return { ok: true, installed: facts.installed, state: next };
}

/** Keeps live, canary and previous always, plus the `keep` newest others; removes the rest, oldest first. */
export function planPrune(versions: InstalledVersion[], state: Pick<ReleaseState, 'live' | 'previous' | 'canary'>, keep: number): PrunePlan {
  const protectedWhy = new Map<string, 'live' | 'canary' | 'previous'>();
  if (state.previous !== null) protectedWhy.set(state.previous, 'previous');
  if (state.canary !== null) protectedWhy.set(state.canary.version, 'canary');
  if (state.live !== null) protectedWhy.set(state.live, 'live');
  const others = versions.filter((v) => !protectedWhy.has(v.label));
  const newestFirst = [...others].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const recent = new Set(newestFirst.slice(0, Math.max(0, keep)).map((v) => v.label));
  const result: PrunePlan = { remove: [], keep: [] };
  for (const v of versions) {
    const why = protectedWhy.get(v.label);
    if (why) result.keep.push({ label: v.label, why });
    else if (recent.has(v.label)) result.keep.push({ label: v.label, why: 'recent' });
    else result.remove.push(v);
  }
  return result;
}

export function planPruneTransition(state: ReleaseState, keep: number, facts: ReleaseFacts): Planned {
  if (!Number.isInteger(keep) || keep < 0) return refuse('BAD_KEEP', `--keep ${keep} is not a whole number of at least 0`, 'For example --keep 3.');
  const prune = planPrune(facts.installed, state, keep);
  const gone = new Set(prune.remove.map((v) => v.label));
  const history = prune.remove.length > 0 ? [...state.history, entry(facts, 'prune', null, { note: `removed ${[...gone].join(', ')}` })] : state.history;
  // A previous version that is removed (it never is: it is protected) would leave `rollback` pointing nowhere.
  return { ok: true, prune, installed: facts.installed.filter((v) => !gone.has(v.label)), state: { ...state, history }, unchanged: prune.remove.length === 0 };
}

/**
 * `depl scale worker=5 [--version V]`: the live version's services (or V's) to those replicas. On the live
 * version the replicas become the app's scale (recorded: later versions are created with it and a version
 * that becomes live is brought to it); on another version they are applied only, and the history says so.
 * The live (or canary) version's http service is never scaled to 0: the edge would have nothing to route to.
 */
export function planScale(state: ReleaseState, request: { replicas: Record<string, number>; version?: string }, facts: ReleaseFacts): Planned {
  const label = request.version ?? state.live;
  if (label === null) return refuse('NO_LIVE', 'nothing is live yet, so there is nothing to scale', 'Make a version live first (depl switch <version>), or name one with --version.');
  const entries = Object.entries(request.replicas);
  if (entries.length === 0) return refuse('NOTHING_TO_SCALE', 'no <service>=<replicas> pair given', 'For example: depl scale worker=5');
  const bad = entries.filter(([, n]) => !Number.isInteger(n) || n < 0 || n > MAX_REPLICAS);
  if (bad.length > 0) return refuse('BAD_REPLICAS', `${bad.map(([s, n]) => `${s}=${n}`).join(', ')}: replicas must be a whole number from 0 to ${MAX_REPLICAS}`);
  const version = facts.installed.find((v) => v.label === label);
  if (version === undefined) {
    return refuse('NOT_INSTALLED', `version "${label}" is not installed (installed: ${facts.installed.map((v) => v.label).join(', ') || 'none'})`, 'Run `depl versions` to list them.');
  }
  const prefix = `${state.app}-${label}-`;
  const has = version.services.map((s) => s.slice(prefix.length));
  const unknown = entries.map(([s]) => s).filter((s) => !has.includes(s));
  if (unknown.length > 0) {
    return refuse('NO_SUCH_SERVICE',
      `${label === state.live ? 'the live version' : 'version'} ${label} has no service ${unknown.map((s) => `"${s}"`).join(', ')} (it has: ${has.join(', ') || 'none'})`,
      'Name one of its services; a service added to depl.yaml later is in the versions installed after it (depl buildinst).');
  }
  const serving = label === state.live || label === state.canary?.version;
  const httpName = version.http?.service.slice(prefix.length);
  if (serving && httpName !== undefined && request.replicas[httpName] === 0) {
    return refuse('WOULD_STOP_LIVE',
      `${httpName}=0 would stop every task of ${label === state.live ? 'the live version' : 'the canary'} ${label}'s http service: ${label === state.live ? 'the domain' : 'its share of the domain'} would answer 502`,
      label === state.live ? 'Switch live to another version first (depl switch), or keep at least 1.' : 'End the canary first (depl canary --abort), or keep at least 1.');
  }
  const recorded = label === state.live;
  const targets = entries.map(([name, n]) => scaleTarget(state.app, version, name, n));
  const scale = recorded ? { ...state.scale, ...request.replicas } : state.scale;
  const unchanged = targets.every((t) => t.from === t.replicas) && JSON.stringify(scale) === JSON.stringify(state.scale);
  const note = `${describeScale(request.replicas)}${recorded ? '' : ' (applied only: not the live version, so not the app\'s scale)'}`;
  return {
    ok: true,
    installed: withReplicas(facts.installed, label, targets),
    state: unchanged ? state : { ...state, scale, history: [...state.history, entry(facts, 'scale', label, { note })] },
    scale: targets,
    unchanged,
  };
}

// ---- derived: routing, crash repair, what changed ------------------------------------------------------------

/** What the edge serves for a state: every installed version with an http service, plus live and canary. */
export function routingFor(state: Pick<ReleaseState, 'live' | 'canary'>, app: string, domain: string, installed: InstalledVersion[]): Routing {
  const served = installed.filter((v) => v.http !== undefined);
  const known = new Set(served.map((v) => v.label));
  return {
    app,
    domain,
    versions: served.map((v) => ({ label: v.label, upstream: { service: v.http!.service, port: v.http!.port, ...(v.http!.address !== undefined ? { address: v.http!.address } : {}) } })),
    ...(state.live !== null && known.has(state.live) ? { live: state.live } : {}),
    ...(state.canary !== null && known.has(state.canary.version) ? { canary: { ...state.canary } } : {}),
  };
}

/**
 * Crash repair by DETECTION (the next depl command, or `depl status` read-only): a document with a change
 * pending was left by a depl that died between recording its intent and committing it. The edge's served
 * generation says which one is true: the pending state if the edge already serves its configuration
 * (the reload happened), else the committed one (the reload did not; a configuration file written but
 * not loaded must then be put back, which `needsEdgeRewrite` says).
 */
export function resolvePending(doc: ReleaseDocument, servedGeneration: string | null): { state: ReleaseState; outcome: 'clean' | 'rolled-forward' | 'rolled-back'; needsEdgeRewrite: boolean } {
  const committed = stateOf(doc);
  if (doc.pending === null) return { state: committed, outcome: 'clean', needsEdgeRewrite: false };
  if (servedGeneration !== null && servedGeneration === doc.pending.generation) {
    return { state: { ...doc.pending.next, edge: { generation: doc.pending.generation } }, outcome: 'rolled-forward', needsEdgeRewrite: false };
  }
  return { state: committed, outcome: 'rolled-back', needsEdgeRewrite: true };
}

/** One line per field that differs: what a dry run prints. */
export function describeChange(before: ReleaseState, after: ReleaseState, beforeInstalled: InstalledVersion[], afterInstalled: InstalledVersion[]): string[] {
  const lines: string[] = [];
  const show = (value: unknown) => (value === null || value === undefined ? '(none)' : typeof value === 'string' ? value : JSON.stringify(value));
  const canary = (c: ReleaseState['canary']) => (c === null ? '(none)' : `${c.version} at ${c.weight}%`);
  if (before.live !== after.live) lines.push(`live: ${show(before.live)} -> ${show(after.live)}`);
  if (before.previous !== after.previous) lines.push(`previous: ${show(before.previous)} -> ${show(after.previous)}`);
  if (canary(before.canary) !== canary(after.canary)) lines.push(`canary: ${canary(before.canary)} -> ${canary(after.canary)}`);
  if (JSON.stringify(before.scale) !== JSON.stringify(after.scale)) lines.push(`scale: ${show(before.scale)} -> ${show(after.scale)}`);
  const beforeLabels = new Set(beforeInstalled.map((v) => v.label));
  const afterLabels = new Set(afterInstalled.map((v) => v.label));
  const added = [...afterLabels].filter((l) => !beforeLabels.has(l));
  const removed = [...beforeLabels].filter((l) => !afterLabels.has(l));
  if (added.length > 0) lines.push(`installed: + ${added.join(', ')}`);
  if (removed.length > 0) lines.push(`installed: - ${removed.join(', ')}`);
  for (const v of afterInstalled) {
    const was = beforeInstalled.find((b) => b.label === v.label)?.replicas ?? {};
    for (const [service, n] of Object.entries(v.replicas ?? {})) if (was[service] !== n) lines.push(`replicas: ${service} ${was[service] ?? '?'} -> ${n}`);
  }
  for (const h of after.history.slice(before.history.length)) lines.push(`history: + ${h.action} ${h.version ?? ''}${h.weight !== undefined ? ` ${h.weight}%` : ''}${h.note ? ` (${h.note})` : ''}`.trimEnd());
  return lines;
}
