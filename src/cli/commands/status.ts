import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { formatNodeTable } from '../../plan/node-table.js';
import { consumersRunning, type VersionRow } from '../../plan/versions-table.js';
import { certificatesServedAt, tlsSettings, type InstalledCertificate, type WithheldCertificate } from '../../plan/tls/certificates.js';
import { describeRenewalRecord } from '../../plan/tls/renewal.js';
import { nodeInputsFor } from '../../workflows/command-inputs.js';
import { backupObjectsFor } from '../../workflows/hibernation-target.js';
import { hibernationStatus, readStatus, type StatusReading } from '../../workflows/status.js';
import { describeUnreadableIntent } from '../../workflows/versions.js';
import { describeCertificates } from '../../workflows/tls/certificates.js';
import type { JobRow } from '../../plan/jobs.js';
import { describeAutoscale, type ControllerState } from '../../plan/autoscale.js';
import type { DomainStatus } from '../../plan/domain-records.js';

interface CertificateStatus {
  id: string;
  names: string[];
  notAfter: string;
  issuer: string;
  /** false: expired or not yet valid, left out of the edge (its hosts are served over plain HTTP). */
  served: boolean;
  withheld?: { reason: WithheldCertificate['reason']; at: string };
}

/** `depl status --json`: the same document as before the reads were gathered in src/workflows/status.ts. */
interface Report {
  nodes: StatusReading['nodes'];
  live: string | null;
  canary: { version: string; weight: number } | null;
  scale?: Record<string, number>;
  versions: VersionRow[];
  tls: { mode: string; certificates: CertificateStatus[]; renewal?: StatusReading['renewal'] };
  jobs: JobRow[];
  autoscale: ControllerState | null;
  allocation?: StatusReading['allocation'];
  dns?: DomainStatus | { error: string };
  /** The install intent's file is not one: the rest is reported without it. */
  intentUnreadable?: StatusReading['release']['intentUnreadable'];
}

function shortService(name: string, version: string): string {
  return name.slice(name.indexOf(`-${version}-`) + version.length + 2);
}

function human(report: Report, installed: InstalledCertificate[], now: number, tls: ReturnType<typeof tlsSettings>, dnsLines?: string[]): string {
  const lines = [formatNodeTable(report.nodes), ''];
  lines.push(`live:     ${report.live ?? '(none)'}`);
  lines.push(`canary:   ${report.canary ? `${report.canary.version} at ${report.canary.weight}%` : '(none)'}`);
  lines.push(`versions: ${report.versions.length === 0 ? '(none)' : report.versions.map((v) => v.version).join(', ')}`);
  // a buildinst under way, or one that died: the next command that takes the lock removes its version
  for (const v of report.versions.filter((r) => r.installing !== undefined)) {
    lines.push(`  ${v.version}: being installed by \`${v.installing!.command}\` (${v.installing!.by}, since ${v.installing!.at}); if that run is gone, the next depl command removes it`);
  }
  if (report.intentUnreadable !== undefined) lines.push(`  warning: ${describeUnreadableIntent(report.intentUnreadable)}`);
  const consuming = consumersRunning(report.versions);
  // a consumers-only app: live is the version whose consumers run; two listed means a handover under way
  if (consuming !== null) lines.push(`consumers: ${consuming.length === 0 ? 'none run' : `${consuming.join(', ')}'s run`}`);
  const live = report.versions.find((v) => v.live);
  if (live !== undefined) lines.push(`tasks:    ${live.services.map((s) => `${shortService(s.name, report.live!)} ${s.running ?? '?'}/${s.replicas}`).join(', ')} (live ${live.version}, running/wanted)`);
  const scale = Object.entries(report.scale ?? {});
  lines.push(`scale:    ${scale.length === 0 ? "depl.yaml's replicas" : `${scale.map(([s, n]) => `${s}=${n}`).join(', ')} (set with depl scale; kept by new versions)`}`);
  lines.push(`tls:      ${report.tls.mode}${report.tls.mode !== 'off' && installed.length === 0 ? ' (no certificate yet)' : ''}`);
  const dnsCredential = report.tls.renewal?.dnsCredential;
  // node-up's credential, not run out, in a running task: a due DNS-01 wildcard is the task's to renew
  const taskRenewsDns01 = report.tls.renewal?.running === true && dnsCredential !== undefined && (dnsCredential.expires === null || Date.parse(dnsCredential.expires) > now);
  for (const line of describeCertificates(installed, now, tls, taskRenewsDns01)) lines.push(`  ${line}`);
  if (report.tls.renewal !== undefined) lines.push(`  ${describeRenewalRecord(report.tls.renewal.last, report.tls.renewal.running)}`);
  if (dnsCredential !== undefined) lines.push(`  ${dnsCredential.warning ?? `renewal task's DNS credential (node-up's): ${dnsCredential.id}, expires ${dnsCredential.expires ?? 'never'}`}`);
  for (const pending of dnsCredential?.pending ?? []) lines.push(`  pending: ${pending}`);
  // `depl run` jobs: running ones, and finished ones a killed depl run left (the next run or prune removes those)
  lines.push(`jobs:     ${report.jobs.length === 0 ? '(none)' : ''}`.trimEnd());
  for (const j of report.jobs) {
    lines.push(`  ${j.name}  ${j.service}@${j.version}  ${j.state}${j.exitCode !== null ? ` (exit ${j.exitCode})` : ''}  started ${j.startedAt} by ${j.by}`);
  }
  if (report.autoscale !== null) {
    lines.push(`autoscale: ${report.autoscale.live ? `controller of ${report.autoscale.version}` : `${report.autoscale.version}'s controller is idle`}, updated ${report.autoscale.updatedAt}`);
    for (const line of describeAutoscale(report.autoscale, now)) lines.push(`  ${line}`);
  }
  if (report.allocation !== undefined) {
    if ('error' in report.allocation) lines.push(`allocation: could not be read from the cloud (${report.allocation.error})`);
    else lines.push('allocation:', ...report.allocation.lines.map((l) => `  ${l}`));
  }
  if (dnsLines !== undefined) lines.push(...dnsLines);
  return lines.join('\n');
}

export default async function command(ctx: CommandContext): Promise<void> {
  const loaded = await requireConfig(ctx);
  const inputs = nodeInputsFor(loaded);
  // a hibernating deployment's nodes are shelved: status says so from the record, without reaching for them
  const hibernating = await hibernationStatus(inputs, () => backupObjectsFor(inputs, ctx.log, { interactive: ctx.interactive }));
  if (hibernating !== null) return ctx.result(hibernating.report, hibernating.human);
  const tls = tlsSettings(loaded.config);
  const { nodes, release, jobs, certificates: installed, renewal, autoscale, allocation, dns } = await readStatus(inputs, ctx.log, { interactive: ctx.interactive });
  const now = Date.now();
  const withheld = new Map(certificatesServedAt(installed, now).withheld.map((w) => [w.id, w]));
  const report: Report = {
    nodes,
    live: release.live,
    canary: release.canary,
    scale: release.scale,
    versions: release.versions,
    tls: {
      mode: tls.mode,
      certificates: installed.map((c) => {
        const out = withheld.get(c.id);
        return {
          id: c.id, names: c.names, notAfter: new Date(c.notAfter).toISOString(), issuer: c.issuer, served: out === undefined,
          ...(out !== undefined ? { withheld: { reason: out.reason, at: new Date(out.at).toISOString() } } : {}),
        };
      }),
      ...(renewal !== undefined ? { renewal } : {}),
    },
    jobs,
    autoscale,
    ...(allocation !== undefined ? { allocation } : {}),
    ...(dns !== undefined ? { dns: 'error' in dns ? dns : dns.status } : {}),
    ...(release.intentUnreadable !== undefined ? { intentUnreadable: release.intentUnreadable } : {}),
  };
  const dnsLines = dns === undefined ? undefined
    : 'error' in dns ? [`dns:      could not be read from Designate (${dns.error})`] : ['dns:', ...dns.lines.map((l) => `  ${l}`)];
  ctx.result(report, human(report, installed, now, tls, dnsLines));
}
