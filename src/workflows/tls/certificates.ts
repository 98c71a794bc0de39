import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DeplConfig, TlsConfig } from '../../config/schema.js';
import { UserError, isDeplError } from '../../errors.js';
import type { Cluster } from '../../apply/cluster.js';
import {
  FILES_ID,
  assertCertificateValid,
  assertKeyFilePrivate,
  certificatesServedAt,
  daysLeft,
  describeWithheld,
  certificateCovers,
  directoryUrl,
  inspectCertificatePair,
  tlsSettings,
  wantedCertificates,
  type CertificateSpec,
  type InstalledCertificate,
} from '../../plan/tls/certificates.js';
import { renewalTimes } from '../../plan/tls/renewal.js';
import { DNS01_RENEWAL_NOTE, planCertificates, renewalDue } from '../../plan/tls/renewal-decision.js';
// acme-client and the OpenStack clients load only when a certificate is to be issued (see issueOne): every
// edge-touching command passes through syncEdgeCertificates, which never issues
import type { OpenStackProviderOptions } from '../../apply/providers/openstack.js';
import type { ChallengeResponder } from '../../apply/tls/acme.js';
import { acmeIssuer, type CertificateIssuer } from '../../apply/tls/issuer.js';
import { dnsChallengeResponder, edgeChallengeCheck, httpChallengeResponder } from '../../apply/tls/responders.js';
import {
  certificatePaths,
  installCertificate,
  listCertificates,
  removeCertificate,
  tlsStoreFor,
  type TlsStore,
} from '../../apply/tls/store.js';
import type { Logger } from '../../util/log.js';
import { syncEdgeCertificates, type EdgeTlsSync } from './edge-sync.js';
import { registerSecret } from '../../util/redact.js';

/**
 * What the certificates read of depl.yaml: the app, its domain, TLS and provider settings (the DNS-01 cloud), its
 * folder (tls: files and caBundle are named relative to it, a clouds.yaml beside it) and its path (named in hints).
 */
export interface TlsProject {
  config: Pick<DeplConfig, 'app' | 'domain' | 'tls' | 'provider'>;
  root: string;
  file: string;
}

/**
 * Certificates for a release: work out which are wanted (plan/tls/certificates.ts), issue the missing ones, renew
 * those with fewer than 30 days left, install `tls: files` as given, drop those no host needs. A host whose
 * certificate cannot be had is reported, not fatal: its version stays reachable over HTTP.
 */
export interface CertificateContext {
  project: TlsProject;
  store: TlsStore;
  log: Logger;
  /** HTTP-01: asks the edge for a challenge file the way the CA will (see httpChallengeResponder). */
  edgeCheck?: (host: string, token: string) => Promise<string | null>;
  /** DNS-01: how to reach the cloud whose Designate holds the zone. */
  openstack?: OpenStackProviderOptions;
  /** First poll interval of an ACME order (tests: short). */
  pollMs?: number;
  now?: () => number;
}

export interface CertificateOutcome {
  tls: TlsConfig;
  /** What the store holds afterwards. */
  installed: InstalledCertificate[];
  issued: string[];
  renewed: string[];
  removed: string[];
  /** Certificates that could not be had, and why. */
  failed: Array<{ id: string; names: string[]; reason: string }>;
  /** Did anything in the store change (the edge must reload to serve it)? */
  changed: boolean;
}

/**
 * `tls: files`, read and checked before anything changes (exit 2): a key readable by others, a key that does
 * not match its certificate, or a certificate outside its validity at `now`.
 */
export async function readCertificateFiles(project: TlsProject, now: number = Date.now()): Promise<{ chain: string; key: string; names: string[]; notAfter: number } | undefined> {
  const tls = tlsSettings(project.config);
  if (tls.mode !== 'files') return undefined;
  const certFile = path.resolve(project.root, tls.cert);
  const keyFile = path.resolve(project.root, tls.key);
  const unreadable = (file: string, what: string) => (error: Error): never => {
    throw new UserError(`cannot read the TLS ${what} ${file}: ${error.message}`, `Fix tls.${what} in ${project.file}.`, 'TLS_FILE_UNREADABLE');
  };
  assertKeyFilePrivate((await stat(keyFile).catch(unreadable(keyFile, 'key'))).mode, keyFile);
  const [chain, key] = await Promise.all([readFile(certFile, 'utf8').catch(unreadable(certFile, 'cert')), readFile(keyFile, 'utf8').catch(unreadable(keyFile, 'key'))]);
  registerSecret(key);
  const pair = inspectCertificatePair(chain, key, { cert: certFile, key: keyFile });
  assertCertificateValid(pair, now, certFile);
  const domain = project.config.domain;
  if (!certificateCovers(pair.names, domain)) {
    throw new UserError(`the certificate ${certFile} does not cover ${domain} (it covers: ${pair.names.join(', ') || 'no names'})`, `Use a certificate for ${domain} (and *.${domain} for the version hosts).`, 'TLS_CERT_WRONG_NAME');
  }
  return { chain, key, names: pair.names, notAfter: pair.notAfter };
}

/** Brings the store to what `versions` need. Throws only for what stops every certificate (bad config, no store). */
export async function ensureCertificates(
  ctx: CertificateContext,
  versions: readonly string[],
  options: { force?: boolean; files?: Awaited<ReturnType<typeof readCertificateFiles>> } = {},
): Promise<CertificateOutcome> {
  const { project, store, log } = ctx;
  const tls = tlsSettings(project.config);
  const now = (ctx.now ?? Date.now)();
  const before = tls.mode === 'off' ? [] : await listCertificates(store);
  const outcome: CertificateOutcome = { tls, installed: before, issued: [], renewed: [], removed: [], failed: [], changed: false };
  if (tls.mode === 'off') return outcome;

  const wanted = wantedCertificates(tls, project.config.domain, versions);
  if (tls.mode === 'files') {
    const files = options.files ?? (await readCertificateFiles(project, now))!;
    const current = await store.remote.readFile(certificatePaths(store, FILES_ID).chain);
    if (current !== files.chain) {
      await installCertificate(store, FILES_ID, { chain: files.chain, key: files.key });
      outcome.issued.push(FILES_ID);
    }
  } else {
    const plan = planCertificates(wanted, before, now, { force: options.force, renewBeforeMs: renewalTimes(tls).renewBeforeMs, challenge: tls.challenge });
    const todo: Array<{ spec: CertificateSpec; renewal: boolean }> = [
      ...plan.issue.map((spec) => ({ spec, renewal: false })),
      ...plan.renew.map((spec) => ({ spec, renewal: true })),
    ];
    if (todo.length > 0) {
      const issuer = await acmeIssuerFor(ctx, tls);
      for (const { spec, renewal } of todo) {
        try {
          await issuer.issue(spec);
          (renewal ? outcome.renewed : outcome.issued).push(spec.id);
          log.step(`${renewal ? 'renewed' : 'issued'} the certificate for ${spec.names.join(', ')}`);
        } catch (error) {
          if (!isDeplError(error)) throw error;
          outcome.failed.push({ id: spec.id, names: spec.names, reason: error.message });
          log.warn(`no certificate for ${spec.names.join(', ')}: ${error.message}${error.hint ? `\n  ${error.hint}` : ''}`);
        }
      }
    }
  }
  const wantedIds = new Set(wanted.map((w) => w.id));
  for (const cert of before.filter((c) => !wantedIds.has(c.id))) {
    await removeCertificate(store, cert.id);
    outcome.removed.push(cert.id);
  }
  outcome.changed = outcome.issued.length + outcome.renewed.length + outcome.removed.length > 0;
  outcome.installed = outcome.changed ? await listCertificates(store) : before;
  return outcome;
}

/**
 * The one issuer (src/apply/tls/issuer.ts) as depl.yaml configures it, writing into `store` (under the lock:
 * its fenced view). The challenge responder is made here, before any order: a DNS-01 cloud that cannot be
 * reached stops every certificate at once.
 */
export async function acmeIssuerFor(ctx: CertificateContext, tls: Extract<TlsConfig, { mode: 'acme' }>, store: TlsStore = ctx.store): Promise<CertificateIssuer> {
  const caBundle = tls.caBundle === undefined ? undefined : await readCaBundle(ctx.project, tls.caBundle);
  const responder = await responderFor({ ...ctx, store }, tls);
  return acmeIssuer(store, {
    directory: directoryUrl(tls.directory),
    ...(tls.email !== undefined ? { email: tls.email } : {}),
    ...(caBundle !== undefined ? { caBundle } : {}),
    ...(ctx.pollMs !== undefined ? { pollMs: ctx.pollMs } : {}),
  }, async () => responder, ctx.log);
}

async function readCaBundle(project: TlsProject, file: string): Promise<string> {
  const resolved = path.resolve(project.root, file);
  const text = await readFile(resolved, 'utf8').catch((error: Error) => {
    throw new UserError(`cannot read tls.caBundle ${resolved}: ${error.message}`, `Fix tls.caBundle in ${project.file}.`, 'TLS_FILE_UNREADABLE');
  });
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new UserError(`tls.caBundle ${resolved} holds no PEM certificate`, undefined, 'TLS_FILE_UNREADABLE');
  return text;
}

async function responderFor(ctx: CertificateContext, tls: Extract<TlsConfig, { mode: 'acme' }>): Promise<ChallengeResponder> {
  if (tls.challenge === 'http-01') return httpChallengeResponder(ctx.store, ctx.edgeCheck);
  const provider = ctx.project.config.provider;
  const cloud = tls.dnsCloud !== undefined ? { cloud: tls.dnsCloud } : provider.type === 'openstack' ? { cloud: provider.cloud, region: provider.region } : undefined;
  if (cloud === undefined) throw new UserError('dns-01 needs an OpenStack cloud', 'Set tls.dnsCloud to a cloud in clouds.yaml.', 'TLS_NO_DNS_CLOUD');
  const [{ openstackSession }, { DesignateClient }] = await Promise.all([import('../../apply/providers/openstack.js'), import('../../apply/openstack/designate.js')]);
  const session = await openstackSession(ctx.project, cloud, ctx.openstack ?? {}, ctx.log);
  return dnsChallengeResponder(new DesignateClient(session));
}

// ---- the cluster's edge ------------------------------------------------------------------------------------

export interface EdgeCertificatesOptions {
  /** Renew every certificate, due or not (`depl tls renew --force`). */
  force?: boolean;
  pollMs?: number;
  openstack?: OpenStackProviderOptions;
  now?: () => number;
}

export type EdgeCertificatesResult = CertificateOutcome & EdgeTlsSync;

/**
 * Issues the certificates these versions lack and renews those due (ACME orders: buildinst and `depl tls
 * renew` only), removes those no host needs, then syncs what the edge renders (syncEdgeCertificates).
 */
export async function issueEdgeCertificates(
  cluster: Cluster,
  project: TlsProject,
  log: Logger,
  versions: readonly string[],
  options: EdgeCertificatesOptions = {},
): Promise<EdgeCertificatesResult> {
  const store = tlsStoreFor(cluster.manager, project.config.app);
  const tls = tlsSettings(project.config);
  const now = options.now ?? Date.now;
  const outcome: CertificateOutcome = tls.mode === 'off'
    ? { tls, installed: [], issued: [], renewed: [], removed: [], failed: [], changed: false }
    : await ensureCertificates(
      { project, store, log, pollMs: options.pollMs, openstack: options.openstack, now, edgeCheck: edgeChallengeCheck(`http://${cluster.managerNode.address}:80`) },
      versions,
      { force: options.force },
    );
  const synced = await syncEdgeCertificates(store, project.config, versions, { now });
  for (const cert of synced.withheld) log.warn(describeWithheld(cert));
  return { ...outcome, ...synced, removed: [...outcome.removed, ...synced.removed] };
}

/**
 * One line per certificate for `depl status` and `depl tls renew`: those the edge does not serve say so, and one
 * due that the renewal task cannot renew (DNS-01, files) says who must, from `renewBefore` ahead.
 * `taskRenewsDns01`: the running renewal task holds a usable DNS credential (node-up's), so a due DNS-01
 * wildcard is the task's to renew, not the operator's.
 */
export function describeCertificates(installed: readonly InstalledCertificate[], now: number, tls?: TlsConfig, taskRenewsDns01 = false): string[] {
  const withheld = new Map(certificatesServedAt(installed, now).withheld.map((w) => [w.id, w]));
  const renewBeforeMs = tls === undefined ? undefined : renewalTimes(tls).renewBeforeMs;
  return installed.map((c) => {
    const out = withheld.get(c.id);
    if (out !== undefined) return describeWithheld(out);
    const days = daysLeft(c, now);
    const line = `${c.names.join(', ')}: expires ${new Date(c.notAfter).toISOString()} (${days} day${days === 1 ? '' : 's'} left)`;
    if (renewBeforeMs === undefined || !renewalDue(c, now, renewBeforeMs)) return line;
    if (c.id === FILES_ID) return `${line}; DUE: put the renewed files in place and run depl tls renew`;
    if (tls?.mode === 'acme' && tls.challenge === 'dns-01') {
      return taskRenewsDns01
        ? `${line}; DUE: the renewal task renews it on its next round with its DNS credential (depl tls renew does it now)`
        : `${line}; DUE: run depl tls renew (${DNS01_RENEWAL_NOTE})`;
    }
    return line;
  });
}
