import { FILES_ID, RENEW_BEFORE_DAYS, certificateCovers, type CertificateSpec, type InstalledCertificate } from './certificates.js';

/**
 * THE renewal decision, one for everything that renews: `depl tls renew` and buildinst (planCertificates, via
 * src/plan/tls/renew-plan.ts) and the renewal task on the cluster (decideRenewals) ask the same function, so
 * they can never disagree on whether a certificate is due.
 */

const DAY_MS = 86_400_000;

/** Why the task leaves a DNS-01 wildcard to the operator (README, "Renewal without an operator"). */
export const DNS01_RENEWAL_NOTE = 'the renewal task renews DNS-01 wildcards only with an application credential in tls.dnsCloud (a password stays on the operator\'s machine)';

/** `12 days`, `3 h`, `40 s`: a time left, in the unit that reads best. */
export function describeSpan(ms: number): string {
  const abs = Math.abs(ms);
  const [value, unit] = abs >= 2 * DAY_MS ? [abs / DAY_MS, 'days'] : abs >= 2 * 3_600_000 ? [abs / 3_600_000, 'h'] : abs >= 120_000 ? [abs / 60_000, 'min'] : [abs / 1000, 's'];
  return `${ms < 0 ? '-' : ''}${Math.floor(value)} ${unit}`;
}

export function renewalDue(cert: Pick<InstalledCertificate, 'notAfter'>, now: number, renewBeforeMs = RENEW_BEFORE_DAYS * DAY_MS): boolean {
  return cert.notAfter - now < renewBeforeMs;
}

export interface RenewalDecision {
  id: string;
  names: string[];
  notAfter: number;
  /** renew: order a new one now; keep: not due; skip: due or not, not this renewer's to renew. */
  action: 'renew' | 'keep' | 'skip';
  /** One line for a log or a plan note: why. */
  reason: string;
}

export interface RenewalPolicy {
  challenge: 'http-01' | 'dns-01';
  renewBeforeMs: number;
  /** Renew even when not due (`depl tls renew --force`). */
  force?: boolean;
  /**
   * Who renews: the operator's depl (every ACME certificate) or the renewal task on the cluster (DNS-01
   * wildcards only when it was given a DNS credential: see dnsCredential).
   */
  renewer: 'operator' | 'task';
  /** The task holds an application credential for Designate (src/plan/tls/renewal.ts renewerDnsCredential). */
  dnsCredential?: boolean;
}

/** One certificate in the store at time `now`: renew it, keep it, or skip it (not this renewer's). */
export function decideRenewal(cert: InstalledCertificate, now: number, policy: RenewalPolicy): RenewalDecision {
  const left = cert.notAfter - now;
  const due = renewalDue(cert, now, policy.renewBeforeMs);
  const base = { id: cert.id, names: cert.names, notAfter: cert.notAfter };
  const leftText = left <= 0 ? `expired ${describeSpan(-left)} ago` : `${describeSpan(left)} left`;
  if (cert.id === FILES_ID) {
    return { ...base, action: 'skip', reason: `${leftText}; a tls: files certificate is renewed by whoever issued it${due ? ' (DUE: replace the files and run depl tls renew)' : ''}` };
  }
  if (policy.renewer === 'task' && policy.challenge === 'dns-01' && policy.dnsCredential !== true) {
    return { ...base, action: 'skip', reason: `${leftText}; ${DNS01_RENEWAL_NOTE}${due ? ' (DUE: run depl tls renew)' : ''}` };
  }
  if (due) return { ...base, action: 'renew', reason: `${leftText}, less than ${describeSpan(policy.renewBeforeMs)}: renewing` };
  if (policy.force === true) return { ...base, action: 'renew', reason: `${leftText}; renewing anyway (--force)` };
  return { ...base, action: 'keep', reason: `${leftText}: not due until ${new Date(cert.notAfter - policy.renewBeforeMs).toISOString()}` };
}

/** The renewal task's round: a decision for each certificate the store holds (it issues none and removes none). */
export function decideRenewals(installed: readonly InstalledCertificate[], now: number, settings: { challenge: 'http-01' | 'dns-01'; renewBeforeMs: number; dnsCredentialFile?: string }): RenewalDecision[] {
  const policy: RenewalPolicy = { challenge: settings.challenge, renewBeforeMs: settings.renewBeforeMs, renewer: 'task', ...(settings.dnsCredentialFile !== undefined ? { dnsCredential: true } : {}) };
  return installed.map((cert) => decideRenewal(cert, now, policy));
}

export interface CertificatePlan {
  /** Not there yet, or there with other names. */
  issue: CertificateSpec[];
  /** There, and decideRenewal says renew. */
  renew: Array<CertificateSpec & { reason: string }>;
  keep: Array<CertificateSpec & { reason: string }>;
  /** In the store but no longer wanted (a pruned version's host). */
  remove: string[];
}

/** What the operator's depl does with the certificates a release wants, given what the store holds at `now`. */
export function planCertificates(
  wanted: readonly CertificateSpec[],
  installed: readonly InstalledCertificate[],
  now: number,
  options: { force?: boolean; renewBeforeMs?: number; challenge?: 'http-01' | 'dns-01' } = {},
): CertificatePlan {
  const plan: CertificatePlan = { issue: [], renew: [], keep: [], remove: [] };
  const byId = new Map(installed.map((c) => [c.id, c]));
  const policy: RenewalPolicy = { challenge: options.challenge ?? 'http-01', renewBeforeMs: options.renewBeforeMs ?? RENEW_BEFORE_DAYS * DAY_MS, renewer: 'operator', ...(options.force ? { force: true } : {}) };
  for (const spec of wanted) {
    const have = byId.get(spec.id);
    if (have === undefined || !spec.names.every((name) => certificateCovers(have.names, name))) {
      plan.issue.push(spec);
      continue;
    }
    const decision = decideRenewal(have, now, policy);
    (decision.action === 'renew' ? plan.renew : plan.keep).push({ ...spec, reason: decision.reason });
  }
  const wantedIds = new Set(wanted.map((s) => s.id));
  plan.remove = installed.filter((c) => !wantedIds.has(c.id)).map((c) => c.id);
  return plan;
}
