import type { ApplicationCredentialAuth, CloudCredentials } from '../../config/clouds.js';
import type { TlsConfig } from '../../config/schema.js';
import { parseDuration } from '../duration.js';
import { LABELS, type ServiceSpec, type SwarmSecretRef } from '../services.js';
import { nextServingChange, type InstalledCertificate } from './certificates.js';
import { decideRenewals } from './renewal-decision.js';
import { renewerServiceName } from '../names.js';
import { edgeDir } from '../edge-service.js';
import { leaseFolder } from '../lock.js';

/**
 * The renewal task on the cluster, as data: what it decides for each certificate at a given time, when it
 * looks again, its swarm service and the record it leaves for `depl status`. The task itself is
 * src/tls-renewer/main.ts; src/apply/tls/renewal-task.ts installs it.
 *
 * The task renews only what is in the manager's certificate store (issuing for a new version host is the job
 * of the depl command that installs it): over HTTP-01 through the edge, and DNS-01 wildcards through
 * Designate when tls.dnsCloud authenticates with an application credential (renewerDnsCredential), which
 * buildinst hands to the task alone as a swarm secret. A password never leaves the operator's machine: with
 * one, DNS-01 certificates are renewed by `depl tls renew` (and buildinst), and the task and `depl status`
 * say so from `renewBefore` ahead. `tls: files` certificates are the institution's:
 * the task only warns when one is close to expiry. Every round it also takes an expired certificate out of the
 * edge (its hosts fall back to plain HTTP) and puts back one that became valid.
 */
export const RENEWER_ROLE = 'tls-renewer';
export const DEFAULT_RENEW_BEFORE = '30d';
export const DEFAULT_RENEW_EVERY = '12h';
/**
 * After a failed renewal or a held lock the task tries again this soon, or sooner when its interval or a
 * quarter of the renewal window is shorter (short-lived certificates must not run out while it waits).
 */
export const RENEW_RETRY_MS = 60_000;
/** The task never looks again sooner than this (a certificate due in 200 ms is looked at in 1 s). */
const MIN_DELAY_MS = 1_000;

export { renewerServiceName };

/** What the task needs to know, handed to it in its environment (nothing secret: the keys stay in the store). */
export interface RenewerSettings {
  app: string;
  domain: string;
  /** The ACME directory URL. */
  directory: string;
  email?: string;
  /** PEM of the CA behind the directory's HTTPS (tls.caBundle's content). */
  caBundle?: string;
  challenge: 'http-01' | 'dns-01';
  hstsMaxAge?: number;
  renewBeforeMs: number;
  everyMs: number;
  /** Where the task, on the manager's network, reaches the edge over plain HTTP. */
  edgeUrl: string;
  /**
   * DNS-01: the file (a swarm secret mounted into the task alone) holding its RenewerDnsCredential; absent,
   * the task leaves DNS-01 wildcards to the operator. Set by planRenewerService, never by hand.
   */
  dnsCredentialFile?: string;
}

/**
 * What the task needs to answer DNS-01 through Designate, and nothing more: the Keystone URL, region and
 * interface, one application credential (never a password: that is the operator's whole account), and the
 * CA to trust for Keystone (the PEM, since the operator's file is not on the cluster).
 */
export interface RenewerDnsCredential {
  authUrl: string;
  regionName?: string;
  interface: string;
  auth: ApplicationCredentialAuth;
  caCert?: string;
  insecure?: boolean;
  /**
   * The zone the TXT records go in, when the credential may reach only its recordsets (node-up's, whose access
   * rules do not let it list zones: src/plan/tls/renewer-credential.ts).
   */
  zone?: { id: string; name: string };
}

/** The task's DNS-01 credential's name as a depl secret (its swarm secret is named after it and its value). */
export const RENEWER_DNS_SECRET = 'depl-tls-renewer-dns';
/** Where the task reads it: swarm mounts it on a tmpfs, readable by root in the task's container only. */
export const RENEWER_DNS_FILE = `/run/secrets/${RENEWER_DNS_SECRET}`;

/**
 * The DNS-01 credential tls.dnsCloud gives the task, or why it gives none (the task then leaves DNS-01
 * wildcards to the operator, and says so). Only tls.dnsCloud, never the provider's cloud: that credential
 * can create and delete the cluster's machines, and the task needs the DNS zone only (the README shows how
 * to make an application credential restricted to Designate's recordsets).
 */
export function renewerDnsCredential(
  tls: TlsConfig,
  credentials: CloudCredentials | undefined,
  caCert: string | undefined,
): { credential: RenewerDnsCredential } | { none: string } {
  if (tls.mode !== 'acme' || tls.challenge !== 'dns-01') return { none: 'tls is not acme with challenge: dns-01' };
  if (tls.dnsCloud === undefined || credentials === undefined) return { none: 'tls.dnsCloud is not set: the provider\'s credential can do far more than DNS and stays on the operator\'s machine' };
  if (credentials.auth.type !== 'application_credential') return { none: `tls.dnsCloud "${tls.dnsCloud}" signs in with a password, which stays on the operator's machine (give it an application credential)` };
  return {
    credential: {
      authUrl: credentials.authUrl,
      ...(credentials.regionName !== undefined ? { regionName: credentials.regionName } : {}),
      interface: credentials.interface,
      auth: credentials.auth,
      ...(caCert !== undefined ? { caCert } : {}),
      ...(credentials.insecure === true ? { insecure: true } : {}),
    },
  };
}

/** The manager's state root: the app's folder under it holds the lock, the ACME account and the edge's files. */
export const renewerStateRoot = '/var/lib/depl';

/** The folder of the task's code on the manager: its bundle and the engine gate's, read-only in the task. */
export function renewerCodeDir(app: string): string {
  return `${renewerStateRoot}/${app}/renewer`;
}

/** The engine gate's folder on the manager (src/plan/tls/engine-gate.ts): its socket is made there and the task reaches it there. */
export function engineGateDir(app: string): string {
  return `${renewerStateRoot}/${app}/edge-gate`;
}

/**
 * The app's TLS state on the manager, outside what the edge mounts: the ACME account (ACME_ACCOUNT_FILE) and the
 * task's record of its last round; the task writes both, so they are in a folder of their own that it mounts.
 */
export function tlsStateDir(app: string, root = renewerStateRoot): string {
  return `${root}/${app}/tls`;
}

/** The ACME account key and URL (0600), in tlsStateDir. */
export const ACME_ACCOUNT_FILE = 'account.json';

/** Where the task records its last round. */
export function renewalRecordPath(app: string, root = renewerStateRoot): string {
  return `${tlsStateDir(app, root)}/renewal.json`;
}

/** tls.renewBefore / tls.renewEvery as milliseconds (the schema checked their form). */
export function renewalTimes(tls: TlsConfig): { renewBeforeMs: number; everyMs: number } {
  const before = tls.mode === 'acme' ? tls.renewBefore : undefined;
  const every = tls.mode === 'acme' ? tls.renewEvery : undefined;
  return { renewBeforeMs: parseDuration(before ?? DEFAULT_RENEW_BEFORE, 'tls.renewBefore'), everyMs: parseDuration(every ?? DEFAULT_RENEW_EVERY, 'tls.renewEvery') };
}

/**
 * How long the task sleeps after a round: until the first certificate it renews becomes due, or what the edge
 * serves changes on its own (a certificate expires and must leave the edge, or becomes valid), at most its
 * interval; after a failure (or a held lock) no longer than RENEW_RETRY_MS.
 */
export function nextCheckDelay(
  installed: readonly InstalledCertificate[],
  now: number,
  settings: Pick<RenewerSettings, 'challenge' | 'renewBeforeMs' | 'everyMs' | 'dnsCredentialFile'>,
  lastRound: 'ok' | 'failed' | 'locked',
): number {
  let delay = settings.everyMs;
  if (lastRound !== 'ok') delay = Math.min(delay, RENEW_RETRY_MS, settings.renewBeforeMs / 4);
  for (const decision of decideRenewals(installed, now, settings)) {
    if (decision.action !== 'keep') continue;
    delay = Math.min(delay, decision.notAfter - settings.renewBeforeMs - now);
  }
  const change = nextServingChange(installed, now);
  if (change !== undefined) delay = Math.min(delay, change - now);
  return Math.max(MIN_DELAY_MS, Math.round(delay));
}

/** What the task leaves on the manager after each round, for `depl status`. */
export interface RenewalRecord {
  /** ISO time the round ended. */
  at: string;
  outcome: 'nothing-due' | 'renewed' | 'edge-updated' | 'failed' | 'locked';
  renewed: string[];
  failed: Array<{ id: string; reason: string }>;
  /** One line per certificate: the decision and why. */
  decisions: string[];
  /** ISO time of the next round. */
  next: string;
}

/** The line `depl status` prints for the task's last round. */
export function describeRenewalRecord(record: RenewalRecord | null, running: boolean): string {
  if (!running && record === null) return 'renewal task: not installed (depl buildinst installs it when tls: acme is on)';
  const state = running ? 'running' : 'NOT RUNNING';
  if (record === null) return `renewal task: ${state}, no round finished yet`;
  const what = {
    'nothing-due': 'nothing was due',
    renewed: `renewed ${record.renewed.join(', ')}`,
    'edge-updated': 'nothing was due; the edge now serves only the certificates valid now (see the lines above)',
    failed: `FAILED for ${record.failed.map((f) => `${f.id} (${f.reason})`).join('; ')}${record.renewed.length > 0 ? `; renewed ${record.renewed.join(', ')}` : ''}`,
    locked: 'a depl command held the cluster lock; trying again',
  }[record.outcome];
  return `renewal task: ${state}; last round ${record.at}: ${what}; next ${record.next}`;
}

type Mount = NonNullable<ServiceSpec['TaskTemplate']['ContainerSpec']['Mounts']>[number];

/**
 * What the task sees of the manager, and nothing else: the folders it writes, mounted read-write, and its code and
 * its engine gate's socket read-only. The app's folder itself is not mounted, so the release document
 * (release.json), install intents, branch database seeds, accessories' records and the autoscalers' state are not
 * there at all (a file replaced by rename, as release.json is, could not be pinned read-only by a mount of its
 * own). What it writes:
 * - lease/: the cluster lock (a folder made and removed there, its guard and its fencing counter; src/plan/lock.ts);
 * - tls/: the ACME account and its round's record, files it replaces by rename;
 * - edge/: certificates and keys (tls/, 0600 files, never in a config, a secret or the spec), HTTP-01 answers
 *   (acme-challenge/), and nginx.conf, which a reload re-renders.
 * Read-only: the engine gate's socket folder (edge-gate/, src/plan/tls/engine-gate.ts: a socket is connected to,
 * never written, through a read-only mount), and its own code folder (renewer/: the task cannot change what it,
 * the gate, or their next start, runs). Every source is made on the manager before the task starts
 * (renewerFolders).
 */
export function renewerMounts(app: string): Mount[] {
  const bind = (source: string, readOnly: boolean): Mount => ({ Type: 'bind', Source: source, Target: source, ...(readOnly ? { ReadOnly: true } : {}) });
  return [
    bind(leaseFolder(renewerStateRoot, app), false),
    bind(tlsStateDir(app), false),
    bind(edgeDir(app), false),
    bind(engineGateDir(app), true),
    bind(renewerCodeDir(app), true),
    // the container's own files are read-only too; node may want a scratch folder
    { Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: 16 * 1024 * 1024, Mode: 0o1777 } },
  ];
}

/** The folders the task's mounts need on the manager (a bind mount's source must exist). */
export function renewerFolders(app: string): string[] {
  return renewerMounts(app).flatMap((m) => (m.Type === 'bind' && m.Source !== undefined ? [m.Source] : []));
}

/**
 * The task's swarm service: one replica on the manager (the store, the lock and the edge are there), on the
 * manager's own network (it reaches the ACME server and the edge as the manager does), with the folders of
 * renewerMounts at their own paths and a read-only root file system.
 * With DNS-01 and an application credential (renewerDnsCredential), that is mounted as a swarm secret of this
 * service alone (0400 root), never put in its environment, which `docker service inspect` shows.
 * `scriptHash` is the bundles' content hash: a new bundle is a spec change, so the task restarts.
 */
export function planRenewerService(options: { settings: RenewerSettings; image: string; script: string; scriptHash: string; dnsSecret?: SwarmSecretRef }): ServiceSpec {
  const { image, script, dnsSecret } = options;
  const { dnsCredentialFile: _given, ...rest } = options.settings;
  const settings: RenewerSettings = dnsSecret !== undefined ? { ...rest, dnsCredentialFile: RENEWER_DNS_FILE } : rest;
  const labels = { [LABELS.app]: settings.app, 'depl.role': RENEWER_ROLE, 'depl.renewer.script': options.scriptHash };
  const policy = { Parallelism: 1, Delay: 0, FailureAction: 'pause' as const, Monitor: 5_000_000_000, Order: 'stop-first' as const };
  return {
    Name: renewerServiceName(settings.app),
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: image,
        Command: ['node', script],
        Env: [`DEPL_RENEWER=${JSON.stringify(settings)}`, 'NODE_ENV=production'],
        Labels: labels,
        // the DNS-01 credential, only in this service, readable by root in its container only
        ...(dnsSecret !== undefined ? { Secrets: [{ File: { Name: RENEWER_DNS_FILE, UID: '0', GID: '0', Mode: 0o400 }, SecretID: dnsSecret.id, SecretName: dnsSecret.name }] } : {}),
        // a round in progress finishes its ACME order or is abandoned whole (the store changes in one rename)
        StopGracePeriod: 20_000_000_000,
        StopSignal: 'SIGTERM',
        Mounts: renewerMounts(settings.app),
        ReadOnly: true,
      },
      RestartPolicy: { Condition: 'any', Delay: 10_000_000_000, MaxAttempts: 0, Window: 0 },
      // beside the edge (the manager): its files and its container are there
      Placement: { Constraints: ['node.labels.depl.edge==true'] },
      Networks: [{ Target: 'host' }],
    },
    Mode: { Replicated: { Replicas: 1 } },
    UpdateConfig: policy,
    RollbackConfig: policy,
    EndpointSpec: { Mode: 'dnsrr' },
  };
}
