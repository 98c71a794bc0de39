import type { ChangePlan } from '../change-plan.js';
import type { TlsConfig } from '../../config/schema.js';
import { FILES_ID, certificatesServedAt, describeWithheld, wantedCertificates, type InstalledCertificate } from './certificates.js';
import { decideRenewal, describeSpan, planCertificates } from './renewal-decision.js';

/**
 * `depl tls renew` (and each round of the renewal task) as data: which certificates to issue, renew or
 * remove, and whether the edge must be given new HTTPS settings. Decided from what the store holds and the
 * time, before anything is done; the applier (src/workflows/tls/renew.ts) runs exactly these steps.
 */
export type TlsRenewStep =
  | { kind: 'issue-certificate'; id: string; names: string[]; describe: string }
  | { kind: 'renew-certificate'; id: string; names: string[]; describe: string }
  | { kind: 'install-files-certificate'; id: typeof FILES_ID; describe: string }
  | { kind: 'remove-certificate'; id: string; describe: string }
  /**
   * The edge serves the certificates the store holds that are valid when this step runs (those just issued
   * included; an expired one left out) and reloads gracefully; the routing stays as it is.
   */
  | { kind: 'update-edge'; describe: string };

export type TlsRenewPlan = ChangePlan<TlsRenewStep>;

export interface TlsRenewInput {
  command: string;
  tls: TlsConfig;
  domain: string;
  renewBeforeMs: number;
  /**
   * The versions whose hosts need a certificate (`depl tls renew`: the routed ones), or `installed`: renew
   * only what the store holds and issue or remove nothing (the renewal task, which knows no versions).
   */
  versions: readonly string[] | 'installed';
  installed: readonly InstalledCertificate[];
  /** tls: files: the store's copy differs from the files in depl.yaml's folder (read before planning). */
  filesDiffer?: boolean;
  /** The edge's HTTPS settings differ from what the store renders at `now` (a certificate expired or became valid). */
  edgeStale: boolean;
  now: number;
  force?: boolean;
  renewer: 'operator' | 'task';
}

export function planTlsRenew(input: TlsRenewInput): TlsRenewPlan {
  const { tls, now } = input;
  const notes: string[] = [];
  const steps: TlsRenewStep[] = [];
  if (tls.mode === 'files') {
    if (input.filesDiffer === true) steps.push({ kind: 'install-files-certificate', id: FILES_ID, describe: 'put the certificate and key of tls: files in the store' });
    else notes.push('the store holds the certificate of tls: files as it is');
  } else if (tls.mode === 'acme') {
    if (input.versions === 'installed') {
      for (const cert of input.installed) {
        const decision = decideRenewal(cert, now, { challenge: tls.challenge, renewBeforeMs: input.renewBeforeMs, renewer: input.renewer, ...(input.force ? { force: true } : {}) });
        if (decision.action === 'renew') steps.push({ kind: 'renew-certificate', id: cert.id, names: cert.names, describe: `renew the certificate for ${cert.names.join(', ')} (${decision.reason.replace(/: renewing.*$/, '')})` });
        else notes.push(`${cert.names.join(', ')}: ${decision.reason}`);
      }
    } else {
      const wanted = wantedCertificates(tls, input.domain, input.versions);
      const decided = planCertificates(wanted, input.installed, now, { renewBeforeMs: input.renewBeforeMs, challenge: tls.challenge, ...(input.force ? { force: true } : {}) });
      for (const spec of decided.keep) notes.push(`${spec.names.join(', ')}: ${spec.reason}`);
      for (const spec of decided.issue) steps.push({ kind: 'issue-certificate', id: spec.id, names: spec.names, describe: `issue a certificate for ${spec.names.join(', ')} (the store has none that covers it)` });
      for (const spec of decided.renew) steps.push({ kind: 'renew-certificate', id: spec.id, names: spec.names, describe: `renew the certificate for ${spec.names.join(', ')} (${spec.reason.replace(/: renewing.*$/, '')})` });
      for (const id of decided.remove) steps.push({ kind: 'remove-certificate', id, describe: `remove the certificate ${id} (no routed version's host needs it)` });
    }
  }
  for (const withheld of certificatesServedAt(input.installed, now).withheld) notes.push(describeWithheld(withheld));
  if (tls.mode !== 'off' && (steps.length > 0 || input.edgeStale)) {
    steps.push({ kind: 'update-edge', describe: 'give the edge the certificates valid then and reload it gracefully (the routing stays)' });
  }
  if (steps.length === 0 && tls.mode === 'acme') notes.push(`every certificate has more than ${describeSpan(input.renewBeforeMs)} left: nothing to renew`);
  return { command: input.command, notes, steps };
}
