import { randomBytes } from 'node:crypto';
import { claimEdgeApp, releaseEdgeApp } from '../apply/edge/apps.js';
import { applyEdgeConfig } from '../apply/edge/config.js';
import { clearInstallIntent, writeInstallIntent } from '../apply/install-intent.js';
import type { HeldLock } from '../apply/lock.js';
import { OperationError } from '../errors.js';
import type { HookFacts } from '../plan/hooks.js';
import { versionHost } from '../plan/names.js';
import { resolveJob, resolveSpec, type InstallPlan, type InstallStep } from '../plan/install-plan.js';
import { describeJobEnd, JOB_START_TIMEOUT_MS, jobExitCode, type Frame, type JobEnd, type JobSpec } from '../plan/jobs.js';
import type { ServiceSpec, SecretDocument } from '../plan/services.js';
import { onInterrupt } from '../util/interrupt.js';
import { Secret } from '../util/secret.js';
import { removeSeedFile, uploadSeedFile } from '../apply/seed-file.js';
import { applyPlan, type ApplyPlanOptions } from './apply-plan.js';
import { fencedControl, operator, type ClusterPort, type InstallTarget } from './cluster-port.js';
import { openRelease, type ReleaseSession } from './release.js';

export interface InstallRun {
  /** The port as buildinst built it; its edge site is the running edge's once ensure-edge has run. */
  port: ClusterPort & { install: InstallTarget };
  /** The cluster lock this buildinst holds: what it writes on the manager goes through lock.fenced. */
  lock: Pick<HeldLock, 'fenced'>;
  plan: InstallPlan;
  /** The resolved secrets' swarm documents, by name in depl.yaml (their values stay out of the plan). */
  secrets: readonly SecretDocument[];
  hookFacts: HookFacts;
  tasksTimeoutMs?: number;
  healthTimeoutMs?: number;
  /** Fake-cluster tests stop the applier here, as a SIGKILL would. */
  afterStep?: ApplyPlanOptions['afterStep'];
}

export interface InstallOutcome {
  httpsMissing?: string;
  tlsWithheld: string[];
  renewer?: string;
  hookFailures?: string[];
  timings: { build: number; distribute: number; install: number };
}

class Interrupted extends OperationError {
  constructor() {
    super('interrupted', undefined, 'INTERRUPTED');
  }
}

/**
 * Runs an install plan (src/plan/install-plan.ts) step by step through the port. A step that fails undoes the
 * completed ones in reverse (src/workflows/apply-plan.ts): the version's services go (a redeploy's are put back),
 * the edge routes as before, and the install record is forgotten only once all that worked; the live version
 * and the accessories are never touched. Ctrl-C from the install record on does the same before depl exits.
 */
export async function applyInstallPlan(run: InstallRun): Promise<InstallOutcome> {
  const { port, lock, plan } = run;
  const target = port.install;
  const log = port.log;
  const made = { configs: {} as Record<string, string>, secrets: {} as Record<string, string>, imageIds: {} as Record<string, string>, autoscalerImage: undefined as string | undefined };
  const outcome: InstallOutcome = { tlsWithheld: [], timings: { build: 0, distribute: 0, install: 0 } };
  const marks: Record<string, number> = {};
  const mark = (name: string) => (marks[name] ??= Date.now());
  let session: ReleaseSession | undefined;
  let earlierTasks = new Set<string>();
  let failure: 'failed' | 'was interrupted' = 'failed';
  let undoFailed = false;
  const interrupt = { stopped: false, reject: (_: Error) => {}, promise: undefined as Promise<never> | undefined, unregister: () => {}, finished: Promise.resolve(), jobs: new AbortController() };
  interrupt.promise = new Promise<never>((_, reject) => {
    interrupt.reject = reject;
  });
  interrupt.promise.catch(() => undefined);
  let finish = () => {};
  interrupt.finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  // the long waits end at once on an interrupt; service changes in flight finish first, then nothing more starts
  const interruptible = <T>(work: Promise<T>): Promise<T> => Promise.race([work, interrupt.promise!]);
  const manager = () => lock.fenced(port.stateRemote);
  const redeploying = plan.steps.some((s) => s.kind === 'update-service');

  const runStep = async (step: InstallStep): Promise<void> => {
    if (interrupt.stopped) throw new Interrupted();
    switch (step.kind) {
      case 'claim-edge-hosts':
        await claimEdgeApp(manager(), port.stateRoot, step.app, step.domain);
        return;
      case 'hook': {
        if (step.hook === 'pre-install') mark('install');
        const ran = await port.hooks?.run(step.hook, run.hookFacts);
        if (ran?.failure !== undefined) outcome.hookFailures = [...(outcome.hookFailures ?? []), ran.failure];
        return;
      }
      case 'ensure-edge': {
        const site = await target.ensureEdge(step);
        session = await openRelease(fencedControl({ ...port, site }, lock), plan.command);
        const route = plan.steps.find((s) => s.kind === 'route-version');
        if (route !== undefined) session.check(route.request);
        return;
      }
      case 'build-image': {
        mark('build');
        const started = Date.now();
        made.imageIds[step.tag] = await target.buildImage(step);
        log.step(`built ${step.tag} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        return;
      }
      case 'distribute-image':
        mark('distribute');
        log.step(`${step.image}: ${await target.distributeImage(step.image, step.nodes, step.registry)}`);
        return;
      case 'ensure-config':
        made.configs[step.document.name] = (await target.ensureConfig(step.document)).id;
        return;
      case 'ensure-file-config':
        made.configs[step.name] = (await target.ensureConfig({ name: step.name, labels: step.labels, data: Buffer.from(step.base64, 'base64') })).id;
        return;
      case 'ensure-secret': {
        const doc = run.secrets.find((s) => s.secret === step.secret && s.name === step.name);
        if (doc === undefined) throw new OperationError(`secret ${step.secret}: its value is not the one this plan was made for`, 'Run the command again.', 'SECRET_CHANGED');
        made.secrets[step.name] = (await target.ensureSecret(doc)).id;
        return;
      }
      case 'stop-legacy-accessory':
        log.warn(step.describe);
        await interruptible(target.stopServices([step.name], run.tasksTimeoutMs ?? 180_000));
        return;
      case 'remove-legacy-accessory':
        await target.removeService(step.name);
        return;
      case 'create-accessory':
        await target.createService(resolveSpec(step.spec, made, {}));
        return;
      case 'update-accessory':
        log.warn(step.describe);
        await target.updateService(resolveSpec(step.spec, made, {}));
        return;
      case 'ensure-autoscaler-image':
        made.autoscalerImage = await target.ensureAutoscalerImage(step.nodeImage, step.version);
        return;
      case 'ensure-network':
        await target.ensureNetwork(step.name, step.labels);
        return;
      case 'stop-stateful':
        log.warn(step.describe);
        await interruptible(target.stopServices(step.services.map((s) => s.name), run.tasksTimeoutMs ?? 180_000));
        return;
      case 'take-live':
        if (session === undefined) throw new OperationError('the release state was not read (no edge step ran)', undefined, 'INSTALL_PLAN_ORDER');
        log.step(step.describe);
        await session.change({ kind: 'switch', version: step.version });
        return;
      case 'write-install-intent':
        // the release phase's outcome is recorded in the history: an app without an edge reads the state here,
        // before its own install record exists (opening the state repairs an install record it finds)
        if (session === undefined && plan.steps.some((s) => s.kind === 'release-phase')) session = await openRelease(fencedControl(port, lock), plan.command);
        earlierTasks = await target.taskIds(plan.steps.flatMap((s) => (s.kind === 'await-tasks' ? s.ignoreTasksOf : [])));
        await writeInstallIntent(manager(), {
          schema: 1, app: port.app, version: plan.version, command: plan.command, by: operator(port), at: (port.now?.() ?? new Date()).toISOString(), pid: process.pid,
          services: step.services, redeploy: step.redeploy, ...(step.replaced !== undefined ? { replaced: step.replaced } : {}),
          ...(step.stopped !== undefined ? { stopped: step.stopped } : {}),
        }, port.stateRoot);
        interrupt.unregister = onInterrupt(async () => {
          interrupt.stopped = true;
          failure = 'was interrupted';
          interrupt.jobs.abort(new Interrupted());
          interrupt.reject(new Interrupted());
          await interrupt.finished;
        }, redeploying ? `putting back the earlier deploy of branch ${plan.branch}` : `removing the half-installed version ${plan.version}`);
        return;
      case 'release-phase':
        await releasePhase(run, step, resolveJob(step.job, made), session, interruptible, interrupt.jobs.signal);
        return;
      case 'branch-database':
        await branchDatabase(run, step, made, interruptible, interrupt.jobs.signal);
        return;
      case 'branch-redis':
        await branchRedis(run, step, made, interruptible, interrupt.jobs.signal);
        return;
      case 'create-service':
        await target.createService(resolveSpec(step.spec, made, step));
        return;
      case 'update-service':
        await target.updateService(resolveSpec(step.spec, made, step));
        return;
      case 'await-tasks': {
        const specs = plan.steps.flatMap((s) => (s.kind === 'create-service' || s.kind === 'update-service' || s.kind === 'create-accessory' || s.kind === 'update-accessory') && step.services.includes(s.spec.Name)
          ? [resolveSpec(s.spec, made, s.kind === 'create-service' || s.kind === 'update-service' ? s : {})] : []);
        await interruptible(target.awaitServices(specs, { timeoutMs: run.tasksTimeoutMs ?? 180_000, ignoreTasks: earlierTasks }));
        return;
      }
      case 'route-version': {
        if (session === undefined) throw new OperationError('the release state was not read (no edge step ran)', undefined, 'INSTALL_PLAN_ORDER');
        const http = step.request.http;
        // a redeploy the edge already routes: the health gate decides before anything is recorded
        if (step.healthFirst && http !== undefined) await session.change(step.request, { precheck: () => healthGate(run, http.service, http.health ?? '/healthz', interruptible) });
        else await session.change(step.request);
        return;
      }
      case 'health-gate':
        await healthGate(run, step.service, step.path, interruptible, step.host);
        return;
      case 'remove-service':
        await target.removeService(step.name).catch((error: Error) => log.warn(`could not remove ${step.name}: ${error.message}`));
        return;
      case 'clear-install-intent':
        interrupt.unregister();
        await clearInstallIntent(manager(), port.app, port.stateRoot);
        return;
      case 'issue-certificates': {
        if (session === undefined) return;
        const routing = session.routing();
        const certs = await target.issueCertificates(routing.versions.map((v) => v.label), step.host);
        // the routing stays; the settings (certificates) changed: the edge reloads them gracefully
        if (certs.site !== undefined) await applyEdgeConfig({ ...certs.site, remote: certs.site.remote === port.stateRemote ? lock.fenced(certs.site.remote) : certs.site.remote }, routing);
        outcome.tlsWithheld = certs.tlsWithheld;
        if (certs.httpsMissing !== undefined) {
          outcome.httpsMissing = certs.httpsMissing;
          log.warn(`HTTPS is missing for ${step.host}, which is served over plain HTTP: ${certs.httpsMissing}`);
        }
        return;
      }
      case 'renewal-task': {
        const renewer = await target.renewalTask(step.mode, step.nodeImage);
        if (renewer !== undefined) outcome.renewer = renewer;
        return;
      }
    }
  };

  const undoStep = async (step: InstallStep): Promise<void> => {
    const note = (error: unknown) => {
      undoFailed = true;
      throw error;
    };
    switch (step.kind) {
      case 'claim-edge-hosts':
        await releaseEdgeApp(manager(), port.stateRoot, step.app, step.before).catch(note);
        return;
      case 'create-service':
        await target.removeService(step.spec.Name).catch(note);
        return;
      case 'update-service':
        await target.restoreServices([step.earlier]).catch(note);
        return;
      case 'stop-stateful':
        await target.startServices(step.services.map((s) => ({ service: s.name, replicas: s.replicas }))).catch(note);
        return;
      case 'take-live':
        if (session === undefined) return;
        await session.change({ kind: 'switch', version: step.from });
        return;
      case 'branch-database':
        if (step.undo === undefined) return;
        await dropBranchDatabase(run, step, made).catch(note);
        return;
      case 'branch-redis':
        if (step.undo === undefined) return;
        await emptyBranchRedis(run, step, made).catch(note);
        return;
      case 'ensure-network':
        // the services are gone by now; a network still in use is left for the operator, with how (a warning, not a failed undo)
        if (step.undo === undefined) return;
        await target.removeNetwork(step.name).catch((error: Error) => log.warn(`could not remove network ${step.name}: ${error.message}`));
        return;
      case 'route-version':
        if (session === undefined) return;
        if (step.undoTo !== undefined) {
          await session.change({ ...step.undoTo, note: `branch ${plan.branch}: redeploy ${failure}, earlier deploy put back` });
        } else {
          await session.change({ kind: 'remove', version: plan.version, note: 'install failed' });
        }
        return;
      case 'write-install-intent':
        // a service left behind stays named by the record, so the next command removes (or puts back) it
        if (undoFailed) return;
        if (step.redeploy && failure === 'failed' && step.replaced !== undefined && step.replaced.length > 0) {
          const failedTasks = await target.taskIds(step.replaced.map((r) => r.name)).catch(() => new Set<string>());
          await target.awaitServices(step.replaced.map((r) => r.spec as unknown as ServiceSpec), { timeoutMs: run.tasksTimeoutMs ?? 180_000, ignoreTasks: failedTasks })
            .then(() => log.info(`the earlier deploy of branch ${plan.branch} runs again`))
            .catch((error: Error) => log.warn(`the earlier deploy of branch ${plan.branch} is put back but not all its tasks run yet: ${error.message}`));
        }
        await clearInstallIntent(manager(), port.app, port.stateRoot);
        return;
      default:
        return;
    }
  };

  try {
    await applyPlan(plan, {
      run: runStep,
      async undo(step) {
        if (step.kind === 'write-install-intent') log.warn(redeploying ? `the redeploy of branch ${plan.branch} (version ${plan.version}) ${failure}; putting its earlier deploy back` : `version ${plan.version} ${failure}; removing its services`);
        await undoStep(step);
      },
    }, { log, ...(run.afterStep !== undefined ? { afterStep: run.afterStep } : {}) });
  } finally {
    interrupt.unregister();
    finish();
  }
  const done = Date.now();
  const build = marks.build ?? marks.distribute ?? marks.install ?? done;
  const distribute = marks.distribute ?? marks.install ?? done;
  outcome.timings = { build: distribute - build, distribute: (marks.install ?? done) - distribute, install: done - (marks.install ?? done) };
  return outcome;
}

async function healthGate(run: InstallRun, service: string, path: string, interruptible: <T>(work: Promise<T>) => Promise<T>, host = versionHost(run.plan.version, run.port.domain)): Promise<void> {
  const target = run.port.install;
  run.port.log.step(`health check: GET http://${host}${path} through the edge`);
  const result = await interruptible(target.healthy(host, path, run.healthTimeoutMs ?? 60_000));
  if (!result.ok) {
    const logs = await target.logTail(service, 15).catch(() => '');
    throw new OperationError(
      `version ${run.plan.version} is not healthy: http://${host}${path} did not answer 200 through the edge (last: ${result.last})` +
        (logs ? `\n--- last log lines of ${service} ---\n${logs}` : ''),
      `Check the service with \`docker service logs ${service}\` on the manager.`,
      'HEALTH_CHECK_FAILED',
    );
  }
}

/** How long making (or dropping) a branch database may take: a schema seed of a large database included. */
const BRANCH_DATABASE_TIMEOUT_MS = 10 * 60_000;

/**
 * A branch database (the plan's `branch-database` step): its record secret with a generated password (kept when
 * a killed run made it), then the job that makes the user and database. When the job fails, a new branch's
 * database is dropped again and its record removed, so nothing half-made stays; the job's output is in the error.
 */
async function branchDatabase(
  run: InstallRun, step: Extract<InstallStep, { kind: 'branch-database' }>, made: { configs: Record<string, string>; secrets: Record<string, string> },
  interruptible: <T>(work: Promise<T>) => Promise<T>, signal: AbortSignal,
): Promise<void> {
  const target = run.port.install;
  const log = run.port.log;
  log.step(step.describe);
  const password = new Secret(randomBytes(24).toString('hex'));
  made.secrets[step.secret] = (await target.ensureSecret({ secret: 'branch-database', name: step.secret, data: password, labels: step.secretLabels })).id;
  const upload = step.seedUpload;
  // the seed file goes to the manager, where the job (pinned there) reads it through a read-only bind mount
  if (upload !== undefined) {
    log.step(`copy ${upload.from} to ${upload.to} on the manager for the seed`);
    await uploadSeedFile(run.port.stateRemote, upload.from, upload.to);
  }
  let ran: { end: JobEnd; output: string };
  try {
    ran = await runDatabaseJob(run, resolveJob(step.job, made), interruptible, signal);
  } finally {
    if (upload !== undefined) await removeSeedFile(run.port.stateRemote, upload.to).catch((error: Error) => log.warn(`could not remove the seed copy ${upload.to} on the manager: ${error.message}`));
  }
  const { end, output } = ran;
  if (jobExitCode(end) === 0) return;
  const what = jobEndText(end);
  if (step.create) {
    await dropBranchDatabase(run, step, made).catch((error: Error) => log.warn(`could not drop the half-made ${step.database} again: ${error.message}; depl prune drops it`));
  }
  throw new OperationError(
    `branch database ${step.database} on ${step.accessory} could not be made: its job ${what}` + (output.trim() !== '' ? `\n--- last output of ${step.job.Name} ---\n${output.trimEnd()}` : ''),
    `Check that ${step.accessory} runs and that its admin can log in (depl logs ${step.accessory}), then run buildinst again.`,
    'BRANCH_DATABASE_FAILED',
  );
}

/**
 * A branch's Redis slot (the plan's `branch-redis` step): the job checks it exists and, unless recorded
 * earlier, that it holds no keys; only then is the record made (its value says nothing: the labels hold the
 * slot). A failed check records nothing and empties nothing: the keys it found are not this branch's.
 */
async function branchRedis(run: InstallRun, step: Extract<InstallStep, { kind: 'branch-redis' }>, made: { configs: Record<string, string>; secrets: Record<string, string> }, interruptible: <T>(work: Promise<T>) => Promise<T>, signal: AbortSignal): Promise<void> {
  run.port.log.step(step.describe);
  const { end, output } = await runDatabaseJob(run, resolveJob(step.job, made), interruptible, signal);
  if (jobExitCode(end) !== 0) {
    throw new OperationError(
      `${step.accessory} ${step.mode === 'database' ? `database ${step.slot}` : `prefix ${step.slot}`} cannot be this branch's: its job ${jobEndText(end)}` + (output.trim() !== '' ? `\n--- last output of ${step.job.Name} ---\n${output.trimEnd()}` : ''),
      `Check that ${step.accessory} runs (depl logs ${step.accessory}) and what the output says, then run buildinst again.`,
      'BRANCH_DATABASE_FAILED',
    );
  }
  await run.port.install.ensureSecret({ secret: 'branch-database', name: step.secret, data: new Secret(step.slot), labels: step.secretLabels });
}

/** Empties a branch's Redis slot (the undo of its step), then removes its record, which frees the number. */
async function emptyBranchRedis(run: InstallRun, step: Extract<InstallStep, { kind: 'branch-redis' }>, made: { configs: Record<string, string>; secrets: Record<string, string> }): Promise<void> {
  const { end, output } = await runDatabaseJob(run, resolveJob(step.dropJob, made), (work) => work);
  if (jobExitCode(end) !== 0) {
    throw new OperationError(`emptying ${step.accessory} ${step.slot} failed: its job ${jobEndText(end)}${output.trim() !== '' ? `: ${output.trim()}` : ''}`, 'depl prune empties it once it can.', 'BRANCH_DATABASE_FAILED');
  }
  await run.port.install.removeSecret(step.secret);
  run.port.log.step(`emptied ${step.accessory} ${step.slot} and removed its record`);
}

/** Drops a new branch's database and user (the undo of its step), then removes its record secret. */
async function dropBranchDatabase(run: InstallRun, step: Extract<InstallStep, { kind: 'branch-database' }>, made: { configs: Record<string, string>; secrets: Record<string, string> }): Promise<void> {
  const { end, output } = await runDatabaseJob(run, resolveJob(step.dropJob, made), (work) => work);
  if (jobExitCode(end) !== 0) {
    throw new OperationError(`dropping branch database ${step.database} failed: its job ${jobEndText(end)}${output.trim() !== '' ? `: ${output.trim()}` : ''}`, 'depl prune drops it once it can.', 'BRANCH_DATABASE_FAILED');
  }
  await run.port.install.removeSecret(step.secret);
  run.port.log.step(`dropped branch database ${step.database} and user ${step.user} on ${step.accessory}`);
}

async function runDatabaseJob(run: InstallRun, job: JobSpec, interruptible: <T>(work: Promise<T>) => Promise<T>, signal?: AbortSignal): Promise<{ end: JobEnd; output: string }> {
  let output = '';
  const write = (frame: Frame) => {
    output = (output + Buffer.from(frame.payload).toString('utf8')).slice(-RELEASE_OUTPUT_KEPT);
  };
  const end = await interruptible(run.port.install.runJob(job, { timeoutMs: BRANCH_DATABASE_TIMEOUT_MS, write, ...(signal !== undefined ? { signal } : {}) }));
  for (const line of output.split('\n').filter((l) => l.trim() !== '')) run.port.log.debug(`  ${job.Name}| ${line}`);
  return { end, output };
}

const jobEndText = (end: JobEnd) => describeJobEnd(end, BRANCH_DATABASE_TIMEOUT_MS);

/** The release phase's output kept for the error: its last lines, at most this many bytes. */
const RELEASE_OUTPUT_KEPT = 16_384;
const RELEASE_LINES_SHOWN = 40;

/**
 * depl.yaml's release phase (the plan's `release-phase` step): the job runs to its end, its output shown line by
 * line as it comes; the outcome is recorded in the history (the version's, even when it stops the install), and
 * anything but exit 0 stops the install with the output's last lines in the error.
 */
async function releasePhase(
  run: InstallRun, step: Extract<InstallStep, { kind: 'release-phase' }>, job: JobSpec, session: ReleaseSession | undefined,
  interruptible: <T>(work: Promise<T>) => Promise<T>, signal: AbortSignal,
): Promise<void> {
  const { port, plan } = run;
  const log = port.log;
  const shown = `\`${step.command.join(' ')}\``;
  let kept = '';
  const partial: Record<1 | 2, string> = { 1: '', 2: '' };
  const write = (frame: Frame) => {
    const text = Buffer.from(frame.payload).toString('utf8');
    kept = (kept + text).slice(-RELEASE_OUTPUT_KEPT);
    const lines = (partial[frame.stream] + text).split('\n');
    partial[frame.stream] = lines.pop() ?? '';
    for (const line of lines) log.info(`  ${step.service}| ${line}`);
  };
  const started = Date.now();
  const end = await interruptible(port.install!.runJob(job, { timeoutMs: step.timeoutMs, write, signal }));
  for (const stream of [1, 2] as const) if (partial[stream] !== '') log.info(`  ${step.service}| ${partial[stream]}`);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const verdict = releaseVerdict(end, step.timeout);
  const note = `${step.service}: ${step.command.join(' ')} -> ${verdict.ok ? `exit 0 in ${seconds} s` : `${verdict.what} after ${seconds} s; install stopped`}`;
  // the history says what ran, also when it stopped the install (the version itself then goes again)
  await session?.change({ kind: 'release', version: plan.version, exitCode: verdict.exitCode, note }).catch((error: Error) => log.warn(`the release phase's outcome is not in the history: ${error.message}`));
  if (verdict.ok) {
    log.step(`release phase: exit 0 in ${seconds} s`);
    return;
  }
  const tail = kept.split('\n').slice(-RELEASE_LINES_SHOWN).join('\n').trimEnd();
  throw new OperationError(
    `the release phase of version ${plan.version} ${verdict.what}: ${shown} (job ${job.Name}); the version is not installed and the live version is as it was` +
      (tail !== '' ? `\n--- last output of ${job.Name} ---\n${tail}` : '\n(the job printed nothing)'),
    verdict.hint,
    verdict.code,
  );
}

function releaseVerdict(end: JobEnd, timeout: string): { ok: true; exitCode: 0 } | { ok: false; exitCode: number | null; what: string; hint: string; code: 'RELEASE_FAILED' | 'RELEASE_TIMEOUT' } {
  const fix = 'Fix the release command or what it needs (its database, a migration), then run buildinst again; nothing else was changed.';
  if (end.kind === 'timed-out') {
    return { ok: false, exitCode: null, what: `did not finish within ${timeout} (stopped)`, hint: `${fix} A longer release.timeout in depl.yaml gives it more time.`, code: 'RELEASE_TIMEOUT' };
  }
  if (end.kind === 'not-started') {
    return { ok: false, exitCode: null, what: `was not started within ${JOB_START_TIMEOUT_MS / 1000} s (${end.detail})`, hint: 'Check the nodes (depl status) and that the image is on them.', code: 'RELEASE_FAILED' };
  }
  const progress = end.progress;
  if (progress.kind === 'failed') return { ok: false, exitCode: null, what: `did not run (${progress.reason})`, hint: fix, code: 'RELEASE_FAILED' };
  if (progress.exitCode === 0) return { ok: true, exitCode: 0 };
  return { ok: false, exitCode: progress.exitCode, what: `failed with exit ${progress.exitCode}${progress.note !== undefined ? ` (${progress.note})` : ''}`, hint: fix, code: 'RELEASE_FAILED' };
}
