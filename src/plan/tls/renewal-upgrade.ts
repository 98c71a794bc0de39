import * as z from 'zod';
import { containerOf, envValue, labelsOf, sameMounts, type PresentSpec } from '../inspected-spec.js';
import type { SwarmSecretRef } from '../services.js';
import { renewerMounts, renewerServiceName, RENEWER_DNS_FILE, RENEWER_ROLE, type RenewerSettings } from './renewal.js';

/**
 * The renewal task an earlier depl installed, as this depl would install it: an earlier task mounted the app's
 * whole state folder read-write (release.json included) and takes the lock where it used to be, which the state
 * layout's move fences off (src/plan/state-layout.ts), so it can renew nothing more. Its spec is planned again from
 * what it was given, which its spec holds (its settings in its environment, its image, its DNS-01 secret), with
 * this depl's mounts and code; a spec whose settings cannot be read is reported, for `depl tls renew`.
 */
export type RenewerUpgrade =
  | { kind: 'renewer'; service: string; settings: RenewerSettings; image: string; dnsSecret?: SwarmSecretRef; why: string }
  | { kind: 'report'; service: string; why: string; hint: string };

const settingsSchema = z.object({
  app: z.string().min(1),
  domain: z.string().min(1),
  directory: z.string().min(1),
  email: z.string().optional(),
  caBundle: z.string().optional(),
  challenge: z.enum(['http-01', 'dns-01']),
  hstsMaxAge: z.number().optional(),
  renewBeforeMs: z.number().positive(),
  everyMs: z.number().positive(),
  edgeUrl: z.string().min(1),
  dnsCredentialFile: z.string().optional(),
});

/** null: `present` is not this app's renewal task, or it already runs as this depl plans it. */
export function planRenewerUpgrade(app: string, present: PresentSpec): RenewerUpgrade | null {
  if (present.name !== renewerServiceName(app) || labelsOf(present.spec)['depl.role'] !== RENEWER_ROLE) return null;
  const container = containerOf(present.spec);
  if (sameMounts(container.Mounts, renewerMounts(app)) && container.ReadOnly === true) return null;
  const read = readRenewerSpec(app, present);
  return read.kind === 'report'
    ? read
    : { ...read, why: `the renewal task ${present.name} mounts more of the manager than it needs (an earlier depl's spec): it is installed again with only the folders it writes` };
}

/**
 * What a renewal task was given, read back from its spec: its settings (its environment), its image and its DNS-01
 * secret, so it can be installed again as this depl plans it (an upgrade, or `depl tls renew` giving it a new DNS
 * credential); a spec whose settings cannot be read is reported.
 */
export function readRenewerSpec(app: string, present: PresentSpec): Omit<Extract<RenewerUpgrade, { kind: 'renewer' }>, 'why'> | Extract<RenewerUpgrade, { kind: 'report' }> {
  const container = containerOf(present.spec);
  const hint = 'Run `depl buildinst`, which installs the renewal task again from depl.yaml.';
  let raw: unknown;
  try {
    raw = JSON.parse(envValue(present.spec, 'DEPL_RENEWER') ?? 'null');
  } catch {
    return { kind: 'report', service: present.name, why: `the renewal task ${present.name} has settings (DEPL_RENEWER) that are not JSON`, hint };
  }
  const parsed = settingsSchema.safeParse(raw);
  if (!parsed.success || parsed.data.app !== app) {
    return { kind: 'report', service: present.name, why: `the renewal task ${present.name} has settings this depl cannot read${parsed.success ? ` (for app ${parsed.data.app})` : `: ${parsed.error.issues[0]?.message ?? ''}`}`, hint };
  }
  if (typeof container.Image !== 'string' || container.Image.length === 0) return { kind: 'report', service: present.name, why: `the renewal task ${present.name} names no image`, hint };
  const { dnsCredentialFile: _given, ...settings } = parsed.data;
  const secret = Array.isArray(container.Secrets)
    ? (container.Secrets as Array<{ File?: { Name?: string }; SecretID?: string; SecretName?: string }>).find((s) => s.File?.Name === RENEWER_DNS_FILE)
    : undefined;
  const dnsSecret = secret?.SecretID !== undefined && secret.SecretName !== undefined ? { id: secret.SecretID, name: secret.SecretName } : undefined;
  return { kind: 'renewer', service: present.name, settings: settings as RenewerSettings, image: container.Image, ...(dnsSecret !== undefined ? { dnsSecret } : {}) };
}
