import { applyEdgeConfig } from '../../apply/edge/config.js';
import type { CertificateIssuer } from '../../apply/tls/issuer.js';
import { edgeTlsRenderFrom, listCertificates, readEdgeTlsRender, removeCertificate, installCertificate, writeEdgeTlsRender, type TlsStore } from '../../apply/tls/store.js';
import type { TlsConfig } from '../../config/schema.js';
import { isDeplError, OperationError, UserError } from '../../errors.js';
import type { Routing } from '../../plan/release-state.js';
import type { EdgeTlsRender } from '../../plan/tls/nginx.js';
import { planTlsRenew, type TlsRenewPlan, type TlsRenewStep } from '../../plan/tls/renew-plan.js';
import { applyPlan, type ApplyPlanOptions, type StepApplier } from '../apply-plan.js';
import { acquirePortLock, openRelease } from '../release.js';
import { fencedControl, type ClusterPort, type PortOpener, type ServiceUpgrades } from '../cluster-port.js';
import type { PresentSpec } from '../../plan/inspected-spec.js';
import type { SwarmSecretRef } from '../../plan/services.js';
import { readRenewerSpec } from '../../plan/tls/renewal-upgrade.js';
import { renewerServiceName } from '../../plan/tls/renewal.js';
import type { RenewerCredentialPlan } from '../../plan/tls/renewer-credential.js';
import { keepRenewerCredential } from './renewer-credential.js';
import type { DeplConfig } from '../../config/schema.js';
import { tlsSettings } from '../../plan/tls/certificates.js';
import { renewalTimes } from '../../plan/tls/renewal.js';
import type { Logger } from '../../util/log.js';
import { describeCertificates, type readCertificateFiles } from './certificates.js';

/**
 * `depl tls renew`: read (the store, the edge's HTTPS settings, the routed versions), plan
 * (src/plan/tls/renew-plan.ts), apply the plan's steps under the cluster lock, every write to the manager
 * through the lock's fence. `--dry-run` returns the same plan without the lock and changes nothing.
 * A certificate that cannot be had does not stop the others: the plan runs on, the edge is given what the
 * store has, and the command then fails (exit 1) naming each one.
 */
export interface TlsRenewSettings {
  tls: TlsConfig;
  renewBeforeMs: number;
  /** tls: files, read and checked from the operator's folder before anything changes. */
  files?: { chain: string; key: string };
  force?: boolean;
}

export interface TlsRenewResult {
  plan: TlsRenewPlan;
  failed: Array<{ id: string; names: string[]; reason: string }>;
  /** provider.dns: the renewal task's node-up credential, as buildinst keeps it (its plan, and replaced ones kept for the next run). */
  credential?: { plan: RenewerCredentialPlan; pending: string[] };
}

/** The edge's HTTPS settings for the store's certificates valid at `now`. */
function renderAt(store: TlsStore, installed: Parameters<typeof edgeTlsRenderFrom>[1], tls: TlsConfig, now: number): EdgeTlsRender {
  return edgeTlsRenderFrom(store, installed, now, tls.mode === 'acme' && tls.hstsMaxAge !== undefined ? { hstsMaxAge: tls.hstsMaxAge } : {});
}

async function readAndPlan(port: ClusterPort & { tls: NonNullable<ClusterPort['tls']> }, routing: Routing, settings: TlsRenewSettings, command: string): Promise<TlsRenewPlan> {
  const { store } = port.tls;
  const now = (port.now?.() ?? new Date()).getTime();
  const [installed, current, filesCopy] = await Promise.all([
    listCertificates(store),
    readEdgeTlsRender(store.remote, store.edgeDir),
    settings.files !== undefined ? store.remote.readFile(`${store.edgeDir}/tls/files/fullchain.pem`) : Promise.resolve(null),
  ]);
  return planTlsRenew({
    command,
    tls: settings.tls,
    domain: port.domain,
    renewBeforeMs: settings.renewBeforeMs,
    versions: routing.versions.map((v) => v.label),
    installed,
    ...(settings.files !== undefined ? { filesDiffer: filesCopy !== settings.files.chain } : {}),
    edgeStale: JSON.stringify(renderAt(store, installed, settings.tls, now)) !== JSON.stringify(current),
    now,
    renewer: 'operator',
    ...(settings.force ? { force: true } : {}),
  });
}

/** Carries out a `tls renew` plan's steps on the port (the lock's fenced view of it). */
export function tlsRenewApplier(port: ClusterPort & { tls: NonNullable<ClusterPort['tls']> }, routing: Routing, settings: TlsRenewSettings, failed: TlsRenewResult['failed']): StepApplier<TlsRenewStep> {
  const { store } = port.tls;
  let issuer: Promise<CertificateIssuer> | undefined;
  const issue = async (step: { id: string; names: string[] }) => {
    try {
      issuer ??= port.tls.issuerFor(store);
      await (await issuer).issue({ id: step.id, names: step.names });
    } catch (error) {
      // one certificate that cannot be had does not stop the others: its hosts stay on plain HTTP
      if (!isDeplError(error) || error.code === 'LOCK_LOST') throw error;
      failed.push({ id: step.id, names: step.names, reason: error.message });
      port.log.warn(`no certificate for ${step.names.join(', ')}: ${error.message}${error.hint ? `\n  ${error.hint}` : ''}`);
    }
  };
  return {
    async run(step) {
      switch (step.kind) {
        case 'issue-certificate':
        case 'renew-certificate':
          return issue(step);
        case 'install-files-certificate':
          if (settings.files === undefined) throw new OperationError('the plan installs tls: files but none were read', undefined, 'TLS_FILES_UNREAD');
          return installCertificate(store, step.id, settings.files);
        case 'remove-certificate':
          return removeCertificate(store, step.id);
        case 'update-edge': {
          const render = renderAt(store, await listCertificates(store), settings.tls, (port.now?.() ?? new Date()).getTime());
          // the edge first, the record of its settings last: a run killed between the two finds the record
          // stale and applies it again
          if (!port.noEdge && routing.versions.length > 0) await applyEdgeConfig({ ...port.site, render: { ...port.site.render, tls: render } }, routing);
          return writeEdgeTlsRender(store, render);
        }
      }
    },
  };
}

export async function renewTls(port: ClusterPort, settings: TlsRenewSettings, options: { dryRun?: boolean; command?: string; afterStep?: ApplyPlanOptions['afterStep'] } = {}): Promise<TlsRenewResult> {
  if (settings.tls.mode === 'off') throw new UserError('tls is off in depl.yaml: there is nothing to renew', 'Set tls: { mode: acme, email: ... } (or files) first.', 'TLS_OFF');
  const tlsPort = port.tls;
  if (tlsPort === undefined) throw new OperationError('this cluster port has no certificate store', undefined, 'TLS_NO_STORE');
  const command = options.command ?? `depl tls renew${settings.force ? ' --force' : ''}`;
  const { certificates: _releaseSync, ...unsynced } = port;
  const withTls = { ...unsynced, tls: tlsPort };
  if (options.dryRun) {
    const session = await openRelease(withTls, command, { dryRun: true });
    const plan = await readAndPlan(withTls, session.routing(), settings, command);
    const credential = await keepTaskCredential(withTls, command, true);
    return { plan, failed: [], ...(credential !== undefined ? { credential } : {}) };
  }
  const lock = await acquirePortLock(port, command);
  try {
    const fenced = fencedControl(withTls, lock) as typeof withTls;
    // an interrupted release change is repaired first, as every command under the lock does
    const session = await openRelease(fenced, command);
    const routing = session.routing();
    const plan = await readAndPlan(fenced, routing, settings, command);
    const failed: TlsRenewResult['failed'] = [];
    await applyPlan(plan, tlsRenewApplier(fenced, routing, settings, failed), { log: port.log, ...(options.afterStep !== undefined ? { afterStep: options.afterStep } : {}) });
    const credential = await keepTaskCredential(fenced, command, false);
    return { plan, failed, ...(credential !== undefined ? { credential } : {}) };
  } finally {
    await lock.release();
  }
}

/**
 * The renewal task's node-up credential (provider.dns), kept current by the same plan buildinst applies
 * (keepRenewerCredential): an operator who only runs `depl tls renew` has it replaced before it ends. The task, when
 * installed, is given a new secret by installing it again from its own spec (its settings and image) with that secret;
 * with none installed, the next buildinst mounts it.
 */
async function keepTaskCredential(port: ClusterPort & { tls: NonNullable<ClusterPort['tls']> }, command: string, dryRun: boolean): Promise<TlsRenewResult['credential']> {
  const given = port.tls.renewerCredential;
  if (given === undefined) return undefined;
  const { upgrades } = port;
  const task = upgrades === undefined ? undefined : (await upgrades.specs()).find((s) => s.name === renewerServiceName(port.app));
  const kept = await keepRenewerCredential({
    command, app: port.app, ...given, now: () => (port.now?.() ?? new Date()).getTime(), log: port.log,
    ...(task !== undefined && upgrades !== undefined ? { mount: { how: 'reinstall' as const, give: (ref: SwarmSecretRef) => giveRenewerSecret(upgrades, port.app, task, ref) } } : {}),
  }, { dryRun });
  return { plan: kept.plan, pending: kept.pending };
}

/** The renewal task installed again as its spec has it, mounting `ref` as its DNS credential (nothing when it does already). */
async function giveRenewerSecret(upgrades: ServiceUpgrades, app: string, task: PresentSpec, ref: SwarmSecretRef): Promise<void> {
  const read = readRenewerSpec(app, task);
  if (read.kind === 'report') throw new OperationError(`${read.why}: it cannot be given the new DNS credential`, read.hint, 'RENEWER_SPEC_UNREADABLE');
  if (read.dnsSecret?.name === ref.name) return;
  await upgrades.renewer({ settings: read.settings, image: read.image, dnsSecret: ref });
}

/** `depl tls renew`: every failure ends the command with exit 1 once all were tried. */
export function throwIfRenewFailed(result: TlsRenewResult): void {
  if (result.failed.length === 0) return;
  throw new OperationError(
    `${result.failed.length} certificate${result.failed.length === 1 ? '' : 's'} could not be issued:\n  ${result.failed.map((f) => `${f.names.join(', ')}: ${f.reason}`).join('\n  ')}`,
    'The hosts without one stay reachable over HTTP; fix the cause and run depl tls renew.',
    'TLS_ISSUE_FAILED',
  );
}

/** What `depl tls renew` prints: the plan it ran (or would run), and the store's certificates afterwards. */
export interface TlsRenewReport {
  plan: TlsRenewPlan;
  /** provider.dns: the renewal task's DNS credential's plan, and replaced ones kept for the next run. */
  credential?: TlsRenewResult['credential'];
  certificates: Array<{ id: string; names: string[]; notAfter: string }>;
  lines: string[];
}

/** What `depl tls renew` reads of depl.yaml: its TLS settings, the tls: files they name, and the port it opens (which may issue). */
export interface TlsRenewInputs {
  config: Pick<DeplConfig, 'provider' | 'tls'>;
  /** tls: files, read and checked (src/workflows/tls/certificates.ts readCertificateFiles); undefined for acme. */
  certificateFiles(): ReturnType<typeof readCertificateFiles>;
  withPort: PortOpener;
}

/** `depl tls renew [--force] [--dry-run]` from depl.yaml: opens the cluster, plans, applies (unless a dry run), reports. */
export async function renewTlsFromConfig(inputs: TlsRenewInputs, log: Logger, options: { force?: boolean; dryRun?: boolean; lockWaitMs?: number }): Promise<TlsRenewReport> {
  const tls = tlsSettings(inputs.config);
  if (tls.mode === 'off') throw new UserError('tls is off in depl.yaml: there is nothing to renew', 'Set tls: { mode: acme, email: ... } (or files) first.', 'TLS_OFF');
  // tls: files is read and checked before anything changes (a bad file exits 2 with nothing touched)
  const files = await inputs.certificateFiles();
  const settings: TlsRenewSettings = { tls, renewBeforeMs: renewalTimes(tls).renewBeforeMs, ...(files !== undefined ? { files } : {}), ...(options.force ? { force: true } : {}) };
  return inputs.withPort(log, async (port) => {
    const result = await renewTls({ ...port, lockWaitMs: options.lockWaitMs ?? 0 }, settings, { ...(options.dryRun ? { dryRun: true } : {}) });
    const installed = await listCertificates(port.tls!.store);
    const now = Date.now();
    const report: TlsRenewReport = {
      plan: result.plan,
      ...(result.credential !== undefined ? { credential: result.credential } : {}),
      certificates: installed.map((c) => ({ id: c.id, names: c.names, notAfter: new Date(c.notAfter).toISOString() })),
      lines: describeCertificates(installed, now, tls),
    };
    throwIfRenewFailed(result);
    return report;
  });
}
