import { applyEdgeConfig, EdgeApplyError, liveConfigPath, readRoutingFile, routingFile, type AppliedEdge } from '../apply/edge/config.js';
import { servedGeneration, servedReport } from '../apply/edge/site.js';
import { intentToActOn, readReleaseFiles, releaseFilePaths } from '../apply/release-files.js';
import type { InstallIntent } from '../plan/install-intent.js';
import { DEFAULT_STATE_ROOT, readReleaseDocument, releaseDocumentFile, writeReleaseDocument } from '../apply/release-store.js';
import { OperationError, UserError } from '../errors.js';
import { consumerHandover, describeHandover } from '../plan/consumers.js';
import { describeStatefulHandover, handoverIsEmpty, statefulHandover } from '../plan/stateful-handover.js';
import { renderRoutingTable } from '../plan/edge-routing.js';
import {
  describeChange, planRelease, resolvePending, routingFor, stateOf, toDocument,
  type InstalledVersion, type Planned, type PrunePlan, type ReleaseDocument, type ReleaseRequest, type ReleaseState, type Routing,
} from '../plan/release-state.js';
import type { ScaleTarget } from '../plan/scale.js';
import { pausePoint } from '../util/pause-point.js';
import { fencedControl, operator, type ClusterPort } from './cluster-port.js';
import { repairInterruptedInstall } from './install-repair.js';
import { acquirePortLock } from './lock-session.js';
import { stopThenStart } from './stateful-handover.js';

// `tls renew` takes the lock through this module (src/workflows/tls/renew.ts)
export { acquirePortLock };

/**
 * The one place where the release state changes: lock -> read -> plan -> apply -> record.
 *
 * Crash safety is by write ORDERING plus DETECT-AND-REPAIR on the next command:
 *   1. the change is recorded as `pending` in the release document (the committed state stays as it was);
 *   2. services the plan scales (depl scale; a switch to a version not at the app's scale) get their replicas,
 *      then the edge configuration rendered from the new state is checked, swapped in and reloaded;
 *   3. the new state is committed and `pending` cleared.
 * A depl that dies between 1 and 3 leaves `pending` behind. Readers (`depl status`) then ask the edge which
 * generation it serves: the pending state if the reload happened, else the committed one, so what status
 * says is what is served. The next command that takes the lock repairs: it commits what is served and, if
 * the new file was written but never loaded, puts the committed configuration back (so no later reload can
 * make live a change nobody finished). A reload that fails or times out restores the previous file itself
 * (src/apply/edge/config.ts) before the error is returned.
 */
export interface ReleaseChange {
  command: string;
  dryRun: boolean;
  before: ReleaseState;
  after: ReleaseState;
  /** One line per changed field (src/plan/release-state.ts describeChange). */
  changes: string[];
  /**
   * Unified diffs of the files the edge would change (src/plan/edge-diff.ts): the routing table nginx routes by,
   * and nginx.conf when its settings or HTTPS server blocks would change too; empty when nothing would.
   */
  nginxDiff: string;
  installed: InstalledVersion[];
  routing: Routing;
  prune?: PrunePlan;
  /** Services brought to these replicas (nothing for a dry run, which only shows them). */
  scale?: ScaleTarget[];
  applied?: AppliedEdge;
  /** Milliseconds per step of this change. */
  phases: Record<string, number>;
}

export interface ChangeOptions {
  /** Runs after planning and before anything changes (health checks, pre-hooks); throwing refuses the change. */
  precheck?: (after: ReleaseState, installed: InstalledVersion[], planned: Extract<Planned, { ok: true }>) => Promise<void>;
  /** The installed versions to plan from, when the caller knows better than the listing (buildinst). */
  installed?: InstalledVersion[];
}

/** What `depl status` needs: the effective state (a pending change resolved against the edge) and the drift. */
export interface ReleaseView {
  doc: ReleaseDocument;
  state: ReleaseState;
  installed: InstalledVersion[];
  /** The generation the edge serves, null when it does not answer. */
  served: string | null;
  /** The generation the edge should serve for `state`. */
  expected: string;
  /** A change was interrupted and not repaired yet. */
  interrupted: boolean;
  /** A buildinst that has not finished (or died): the install intent beside the document, read with it. */
  installing: InstallIntent | null;
  /** The install intent's file could not be read as one: which file, why, and what to do (the state is shown anyway). */
  intentUnreadable?: { file: string; problem: string; hint: string };
}

function clear(record: Record<string, number>): Record<string, number> {
  for (const key of Object.keys(record)) delete record[key];
  return record;
}

function timer() {
  const phases: Record<string, number> = {};
  let mark = performance.now();
  return {
    phases,
    phase(name: string) {
      const now = performance.now();
      phases[name] = (phases[name] ?? 0) + Math.round(now - mark);
      mark = now;
    },
  };
}

/** What reading the release state needs of the port. */
export type ReleaseReadPort = Pick<ClusterPort, 'app' | 'domain' | 'stateRemote' | 'stateRoot' | 'site' | 'noEdge' | 'installed'>;

/** Reads without the lock and without changing anything. */
export async function readRelease(control: ReleaseReadPort): Promise<ReleaseView> {
  const [{ doc, intent }, answered, installed] = await Promise.all([
    readReleaseFiles(control.stateRemote, control.app, control.stateRoot),
    control.noEdge ? null : servedGeneration(control.site),
    control.installed(),
  ]);
  const { state, outcome } = resolveAgainstEdge(control, doc, answered);
  const expected = renderRoutingTable(routingFor(state, control.app, control.domain, installed)).generation;
  // no edge: nothing serves a routing, so there is none to disagree with the recorded state
  const served = control.noEdge ? expected : answered;
  return {
    doc, state, installed, served, expected, interrupted: outcome !== 'clean', installing: intent.ok ? intent.intent : null,
    ...(intent.ok ? {} : { intentUnreadable: { file: intent.file, problem: intent.error.message, hint: intent.error.hint ?? '' } }),
  };
}

/**
 * An interrupted change resolved against the generation the edge answered. An app without an edge "serves" the
 * change itself: its only effect (a scale) may have reached the swarm, so it is recorded rather than forgotten
 * (as when an edge serves it).
 */
function resolveAgainstEdge(control: Pick<ClusterPort, 'noEdge'>, doc: ReleaseDocument, answered: string | null): ReturnType<typeof resolvePending> {
  return resolvePending(doc, control.noEdge ? doc.pending?.generation ?? null : answered);
}

export class ReleaseSession {
  readonly phases: Record<string, number> = {};
  /** The nginx settings generation the edge reported when the session was opened; unknown once the edge changed. */
  runningConfig: string | undefined;
  constructor(
    private readonly control: ClusterPort,
    readonly command: string,
    public state: ReleaseState,
    public installed: InstalledVersion[],
    private served: string | null,
    readonly dryRun: boolean,
    /** performance.now() when the command asked for the lock. */
    readonly startedAt: number,
  ) {}

  routing(state: ReleaseState = this.state, installed: InstalledVersion[] = this.installed): Routing {
    return routingFor(state, this.control.app, this.control.domain, installed);
  }

  /**
   * Makes the edge's HTTPS settings match the certificate store now, for the current routing: certificates no
   * version needs are dropped, an expired one leaves the edge (its hosts fall back to plain HTTP), one renewed
   * by the renewal task or `depl tls renew` comes in. Never an ACME order: a release change never waits on a
   * CA. When the settings changed, the edge reloads gracefully with the routing as it is. Runs under the lock,
   * after the state was read and repaired: every edge-touching command (withRelease) does it first.
   */
  async syncCertificates(): Promise<void> {
    if (this.dryRun || this.control.certificates === undefined) return;
    const started = performance.now();
    const changed = await this.control.certificates(this.routing().versions.map((v) => v.label));
    if (changed !== null) {
      const { tls: _previous, ...render } = this.control.site.render;
      this.control.site = { ...this.control.site, render: changed.render === undefined ? render : { ...render, tls: changed.render } };
      this.runningConfig = undefined;
      await applyEdgeConfig(this.control.site, this.routing());
    }
    this.phases.certificates = (this.phases.certificates ?? 0) + Math.round(performance.now() - started);
  }

  /** Plans `request` without applying it: throws the refusal as a UserError. */
  check(request: ReleaseRequest): void {
    const planned = planRelease(this.state, request, { installed: this.installed, at: new Date(0).toISOString(), by: '' });
    if (!planned.ok) throw new UserError(planned.refusal.message, planned.refusal.hint, planned.refusal.code);
  }

  /** Plans `request` on the current state; applies and records it unless this is a dry run. */
  async change(request: ReleaseRequest, options: ChangeOptions = {}): Promise<ReleaseChange> {
    const control = this.control;
    const t = timer();
    const facts = { installed: options.installed ?? this.installed, at: (control.now?.() ?? new Date()).toISOString(), by: operator(control) };
    const planned = planRelease(this.state, request, facts);
    if (!planned.ok) throw new UserError(planned.refusal.message, planned.refusal.hint, planned.refusal.code);
    const before = this.state;
    const routing = this.routing(planned.state, planned.installed);
    const generation = renderRoutingTable(routing).generation;
    const change: ReleaseChange = {
      command: this.command,
      dryRun: this.dryRun,
      before,
      after: { ...planned.state, edge: { generation } },
      changes: describeChange(before, planned.state, this.installed, planned.installed),
      nginxDiff: '',
      installed: planned.installed,
      routing,
      ...(planned.prune !== undefined ? { prune: planned.prune } : {}),
      ...(planned.scale !== undefined ? { scale: planned.scale } : {}),
      phases: t.phases,
    };
    t.phase('plan');
    // no edge: the routing is only a record, nothing reads it
    if (control.noEdge) this.served = generation;
    if (this.dryRun && control.noEdge) return change;
    if (this.dryRun) {
      const site = control.site;
      const [{ edgeFilesDiff, plannedEdgeFiles }, routingNow, nginxConfNow] = await Promise.all([
        import('../plan/edge-diff.js'),
        readRoutingFile(site, routing.app),
        site.remote.readFile(liveConfigPath(site)),
      ]);
      const files = plannedEdgeFiles(routing, site.render, { routing: routingFile(site, routing.app), nginxConf: liveConfigPath(site) }, { routing: routingNow, nginxConf: nginxConfNow });
      change.nginxDiff = edgeFilesDiff(files, this.command);
      return change;
    }
    await options.precheck?.(planned.state, planned.installed, planned);
    t.phase('checks');
    const scale = planned.scale ?? [];
    if (scale.length > 0 && control.swarm === undefined && request.kind === 'scale') {
      throw new OperationError('this edge has no swarm whose services could be scaled', undefined, 'NO_SWARM');
    }
    const scales = scale.length > 0 && control.swarm !== undefined;
    const intent = toDocument(before, { next: change.after, generation, command: this.command });
    // Only the edge changes, and its files are on the manager that holds the state: the intent is written by
    // the command that writes the routing table, just before it (one round trip; a depl killed between the two
    // files is as one killed after a separate intent write, src/apply/edge/config.ts)
    const intentWithRouting = generation !== this.served && !scales && control.site.files === undefined && control.site.remote === control.stateRemote;
    if ((generation !== this.served || scales) && !intentWithRouting) {
      await writeReleaseDocument(control.stateRemote, intent, control.stateRoot ?? DEFAULT_STATE_ROOT);
      t.phase('recordIntent');
      await pausePoint('after-intent');
    }
    if (scales) {
      try {
        await control.swarm!.scale(scale);
      } catch (error) {
        await this.record(before, null).catch(() => undefined);
        throw error;
      }
      t.phase('scale');
    }
    if (generation !== this.served) {
      const runningConfig = this.runningConfig;
      this.runningConfig = undefined;
      try {
        change.applied = await applyEdgeConfig(control.site, routing, {
          ...(runningConfig !== undefined ? { runningConfig } : {}),
          ...(intentWithRouting ? { before: releaseDocumentFile(intent, control.stateRoot ?? DEFAULT_STATE_ROOT) } : {}),
        });
      } catch (error) {
        // Nothing written (nginx rejected the settings) or the previous files put back: the committed state is
        // what the files say, whatever the edge answers right now (an edge still serving the new routing is
        // drift the next command repairs). Otherwise the pending intent stays, for the next command to
        // resolve against what the edge serves.
        const outcome = error instanceof EdgeApplyError ? error.outcome : error instanceof OperationError && error.code === 'EDGE_CONFIG_REJECTED' ? 'unchanged' : 'unknown';
        if (outcome !== 'unknown') await this.record(before, null).catch(() => undefined);
        throw error;
      }
      t.phase('apply');
      // up to the routing table in place (a settings reload included), then until the edge reports it serves it
      const { apply = 0, ...rest } = t.phases;
      const edgeConfirm = Math.round(change.applied.confirmMs);
      Object.assign(clear(t.phases), rest, { routingWrite: Math.max(0, apply - edgeConfirm), edgeConfirm });
      this.served = generation;
    }
    await pausePoint('before-record');
    await this.record(change.after, null);
    t.phase('record');
    this.state = change.after;
    this.installed = planned.installed;
    for (const [k, v] of Object.entries(t.phases)) this.phases[k] = (this.phases[k] ?? 0) + v;
    return change;
  }

  private async record(state: ReleaseState, pending: ReleaseDocument['pending']): Promise<void> {
    await writeReleaseDocument(this.control.stateRemote, toDocument(state, pending), this.control.stateRoot ?? DEFAULT_STATE_ROOT);
  }

  /**
   * A consumers-only app (src/plan/consumers.ts): brings the swarm to "only the live version's consumers run",
   * starting the live ones first. This finishes a switch or rollback that was killed between starting the new
   * consumers and stopping the old (or undoes the start, when the change was never recorded), and is recorded
   * as a repair. `installing`: a version an interrupted buildinst left, which its own repair removes.
   */
  async reconcileConsumers(installing?: string): Promise<void> {
    const control = this.control;
    if (control.swarm === undefined) return;
    const handover = consumerHandover(this.state.live, this.installed.filter((v) => v.label !== installing), this.state.scale, this.state.canary);
    if (handover.start.length === 0 && handover.stop.length === 0) return;
    control.log.warn(`repair: only the live version ${this.state.live}'s consumers should run: ${describeHandover(handover)}`);
    if (handover.start.length > 0) await control.swarm.scale(handover.start);
    if (handover.stop.length > 0) await control.swarm.scale(handover.stop);
    const targets = [...handover.start, ...handover.stop];
    this.installed = this.installed.map((v) => ({ ...v, replicas: { ...v.replicas, ...Object.fromEntries(targets.filter((t) => v.services.includes(t.service)).map((t) => [t.service, t.replicas])) } }));
    this.state = { ...this.state, history: [...this.state.history, { at: (control.now?.() ?? new Date()).toISOString(), action: 'repair', version: this.state.live, by: operator(control), note: `consumers: ${describeHandover(handover)}` }] };
    await this.record(this.state, null);
  }

  /**
   * A stateful service (src/plan/stateful-handover.ts): the live version runs its volumes, nothing else does.
   * This finishes or undoes a switch killed during the handover (the live version is whatever was recorded), and
   * is recorded as a repair. Other versions are stopped and gone before the live one starts.
   */
  async reconcileStateful(): Promise<void> {
    const control = this.control;
    if (control.swarm === undefined) return;
    const handover = statefulHandover(this.state.live, this.installed, this.state.scale);
    if (handoverIsEmpty(handover)) return;
    control.log.warn(`repair: the live version ${this.state.live} runs its stateful services, no other version does: ${describeStatefulHandover(handover)}`);
    // repair of a killed switch: the recorded live version takes its volumes back, without a health gate to pass
    const left = await stopThenStart(control.swarm, handover, 180_000);
    if (left !== null) {
      throw new OperationError(
        `repair: ${left} did not stop within 180 s, so ${this.state.live}'s stateful services were not started on the same volume`,
        'Run the command again once their tasks are gone (`docker service ps <service>`).', 'STATEFUL_HANDOVER_FAILED',
      );
    }
    const targets = [...handover.stop, ...handover.start];
    this.installed = this.installed.map((v) => ({ ...v, replicas: { ...v.replicas, ...Object.fromEntries(targets.filter((t) => v.services.includes(t.service)).map((t) => [t.service, t.replicas])) } }));
    this.state = { ...this.state, history: [...this.state.history, { at: (control.now?.() ?? new Date()).toISOString(), action: 'repair', version: this.state.live, by: operator(control), note: `stateful: ${describeStatefulHandover(handover)}` }] };
    await this.record(this.state, null);
  }

  /** The crash repair of the module comment: commit what the edge serves, or put the committed config back. */
  async repair(doc: ReleaseDocument): Promise<void> {
    const control = this.control;
    const resolved = resolveAgainstEdge(control, doc, this.served);
    const routing = this.routing(resolved.state);
    const expected = renderRoutingTable(routing).generation;
    if (control.noEdge) this.served = expected;
    if (resolved.outcome === 'clean' && this.served === expected) return;
    // a cluster's first change: its edge has never been given a routing table, so nothing is being repaired
    const firstTable = resolved.outcome === 'clean' && doc.edge.generation === null && doc.history.length === 0;
    const why = resolved.outcome === 'rolled-forward'
      ? doc.pending?.generation === doc.edge.generation
        ? `an interrupted \`${doc.pending?.command}\` did not change the edge's routing; recording it (if \`depl versions\` shows its services short of their replicas, run it again)`
        : `an interrupted \`${doc.pending?.command}\` had already reached the edge; recording it`
      : resolved.outcome === 'rolled-back'
        ? `an interrupted \`${doc.pending?.command}\` never reached the edge; putting the edge configuration back`
        : `the edge serves configuration ${this.served ?? '(no answer)'}, not ${expected} of the recorded state; re-applying it`;
    if (firstTable) control.log.step(`the edge gets its first routing table (${expected})`);
    else control.log.warn(`repair: ${why}`);
    if ((this.served !== expected || resolved.needsEdgeRewrite) && !control.noEdge) {
      this.runningConfig = undefined;
      await applyEdgeConfig(control.site, routing);
    }
    this.served = expected;
    const note = resolved.outcome === 'clean' ? 'edge re-applied' : `${resolved.outcome} ${doc.pending?.command ?? ''}`.trim();
    const repaired = { at: (control.now?.() ?? new Date()).toISOString(), action: 'repair' as const, version: resolved.state.live, by: operator(control), note };
    this.state = { ...resolved.state, edge: { generation: expected }, history: firstTable ? resolved.state.history : [...resolved.state.history, repaired] };
    await this.record(this.state, null);
  }
}

/**
 * Runs fn with the release state read under the cluster lock (repaired first if a depl died mid-change).
 * A dry run takes no lock and repairs nothing: it only reads and plans.
 */
export async function withRelease<T>(control: ClusterPort, command: string, options: { dryRun?: boolean }, fn: (session: ReleaseSession) => Promise<T>): Promise<T> {
  const startedAt = performance.now();
  if (options.dryRun) return fn(await openRelease(control, command, { dryRun: true, startedAt }));
  // the release files are read in the lock's own round trip
  const lock = await acquirePortLock(control, command, { read: releaseFilePaths(control.app, control.stateRoot ?? DEFAULT_STATE_ROOT) });
  let session: ReleaseSession | undefined;
  try {
    session = await openRelease(fencedControl(control, lock), command, { startedAt, read: lock.reads });
    await session.syncCertificates();
    return await fn(session);
  } finally {
    const releasing = performance.now();
    await lock.release();
    // the phases object is the one the result carries (switchIn returns it), so unlock shows there too
    if (session !== undefined) session.phases.unlock = Math.round(performance.now() - releasing);
  }
}

/** Reads (and repairs) the release state for a caller that already holds the lock, or for a dry run. */
export async function openRelease(control: ClusterPort, command: string, options: { dryRun?: boolean; startedAt?: number; read?: ReadonlyMap<string, string | null> | null } = {}): Promise<ReleaseSession> {
  const t = timer();
  const startedAt = options.startedAt ?? performance.now();
  if (!options.dryRun) {
    t.phases.lock = Math.round(performance.now() - startedAt);
    await pausePoint('after-lock');
  }
  // a dry run leaves an interrupted install alone, so it reads the document only
  const [{ doc, installing }, report, installed] = await Promise.all([
    options.dryRun
      ? readReleaseDocument(control.stateRemote, control.app, control.stateRoot).then((read) => ({ doc: read, installing: null }))
      // a command that takes the lock repairs the install the intent names: an unreadable one is refused
      : readReleaseFiles(control.stateRemote, control.app, control.stateRoot, options.read).then((read) => ({ doc: read.doc, installing: intentToActOn(read.intent) })),
    control.noEdge ? null : servedReport(control.site),
    control.installed(),
  ]);
  const served = report?.routing ?? null;
  const dryRun = options.dryRun === true;
  const resolved = resolveAgainstEdge(control, doc, served);
  const session = new ReleaseSession(control, command, dryRun ? resolved.state : stateOf(doc), installed, served, dryRun, startedAt);
  session.runningConfig = report?.config || undefined;
  if (!dryRun) await session.repair(doc);
  // a consumers-only app: only the live version's consumers run (a switch killed half-way is finished here)
  if (!dryRun) await session.reconcileConsumers(installing?.version);
  // a buildinst that died before its version was in: the version goes (a buildinst of it runs after this)
  if (installing !== null) await repairInterruptedInstall(control, installing, session);
  // a switch killed while handing a volume over: the live version runs it (an interrupted install puts back its own)
  else if (!dryRun) await session.reconcileStateful();
  t.phase('read');
  Object.assign(session.phases, t.phases);
  return session;
}

/** A dry run's report: the state change and the nginx diff. */
export function formatDryRun(change: ReleaseChange): string {
  const lines = [`Dry run of \`${change.command}\`: nothing was changed.`, '', 'Release state:'];
  lines.push(...(change.changes.length > 0 ? change.changes.map((l) => `  ${l}`) : ['  (no change)']));
  if (change.prune !== undefined) {
    lines.push('', `Would remove: ${change.prune.remove.map((v) => `${v.label} (${v.services.join(', ') || 'no services'})`).join('; ') || 'nothing'}`);
  }
  lines.push('', 'Edge configuration (nginx):', change.nginxDiff === '' ? '  (no change)' : change.nginxDiff.trimEnd());
  return lines.join('\n');
}

/** A dry run's --json document. */
export function dryRunResult(change: ReleaseChange): { dryRun: true; command: string; changes: string[]; before: ReleaseState; after: ReleaseState; nginxDiff: string } {
  return { dryRun: true, command: change.command, changes: change.changes, before: change.before, after: change.after, nginxDiff: change.nginxDiff };
}

/**
 * Takes the lock, reads the state and repairs the edge if it serves anything else than the recorded state
 * renders to (versions installed or removed behind depl's back, an interrupted change); changes nothing else.
 */
export async function syncRelease(control: ClusterPort, command = 'depl sync'): Promise<ReleaseState> {
  return withRelease(control, command, {}, async (session) => session.state);
}
