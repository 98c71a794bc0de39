import type { DeplConfig } from '../../config/schema.js';
import type { ChangePlan } from '../change-plan.js';
import { tlsSettings } from './certificates.js';
import { RENEWER_DNS_SECRET } from './renewal.js';
import { LABELS } from '../services.js';

/**
 * The renewal task's own DNS-01 credential on a zero-config domain (provider.dns, challenge dns-01, no tls.dnsCloud),
 * as data: node-up makes it with the operator's Keystone login, which never goes to the cluster. It is a Keystone
 * application credential that can do as little as Keystone allows: the member role only (Designate's policy asks
 * for it to change recordsets), access rules that let its tokens reach nothing but the recordsets of the one zone
 * (where the cloud's Keystone has access rules: Train and later), an expiry, and a name that says whose it is and
 * what for. Its id and secret go into one swarm secret mounted into the renewal task alone (src/plan/tls/renewal.ts);
 * depl.yaml and the terminal never see them. node-up reuses it while it has RENEWER_CREDENTIAL_ROTATE_MS left, then
 * makes a new one and retires the old, and so does buildinst (renewerCredentialDue), which gives the task the new
 * one in the same run; node-down deletes every one it made.
 */
const DAY_MS = 24 * 3600_000;
export const RENEWER_CREDENTIAL_LIFETIME_MS = 365 * DAY_MS;
/** A credential with no more than this left is replaced by the next buildinst or node-up (status warns from then on). */
export const RENEWER_CREDENTIAL_ROTATE_MS = 60 * DAY_MS;
/** Designate's policy lets a project member change its recordsets; a reader cannot. */
const DNS_WRITER_ROLES = ['member', 'Member', '_member_'];

/** The swarm secret's labels: which credential it holds and until when (ISO), read without opening it. */
export const RENEWER_CREDENTIAL_LABELS = { credential: 'depl.renewer.credential', expires: 'depl.renewer.expires' } as const;

/** A credential as Keystone lists it (ms since the epoch; null: it never expires). */
export interface ListedCredential {
  id: string;
  name: string;
  expiresAt: number | null;
}

/** A swarm secret holding one: its name and the credential its labels name. */
export interface HeldCredential {
  secret: string;
  credentialId: string;
  expiresAt: number | null;
}

export interface AccessRule {
  service: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
}

/** Every credential node-up made for this app starts so; the rest of the name is when it was made. */
export function renewerCredentialPrefix(app: string): string {
  return `depl-${app}-tls-renewer-dns01-`;
}

/** Keystone takes a name once per user (409): one already taken (a second run within the millisecond) gets a count. */
export function renewerCredentialName(app: string, now: number, taken: readonly string[] = []): string {
  const base = renewerCredentialPrefix(app) + new Date(now).toISOString().replace(/[-:]/g, '').replace('.', '');
  let name = base;
  for (let n = 2; taken.includes(name); n += 1) name = `${base}-${n}`;
  return name;
}

/** This app's credentials among the user's (the rest are the operator's own and left alone). */
export function ownCredentials(app: string, listed: readonly ListedCredential[]): ListedCredential[] {
  return listed.filter((c) => c.name.startsWith(renewerCredentialPrefix(app)));
}

/**
 * The access rules: the zone's recordsets and nothing else, at the path Designate sees (its catalog URL's path, as
 * keystonemiddleware matches the request's whole path, then /v2 as DesignateClient adds it).
 */
export function renewerAccessRules(dnsEndpoint: string, zoneId: string): AccessRule[] {
  const root = new URL(dnsEndpoint).pathname.replace(/\/+$/, '');
  const recordsets = `${/\/v2$/.test(root) ? root : `${root}/v2`}/zones/${zoneId}/recordsets`;
  return [
    { service: 'dns', method: 'GET', path: recordsets },
    { service: 'dns', method: 'POST', path: recordsets },
    { service: 'dns', method: 'GET', path: `${recordsets}/*` },
    { service: 'dns', method: 'PUT', path: `${recordsets}/*` },
    { service: 'dns', method: 'DELETE', path: `${recordsets}/*` },
  ];
}

export interface CredentialRequestInput {
  app: string;
  domain: string;
  zone: { id: string; name: string };
  /** Designate's catalog URL. */
  dnsEndpoint: string;
  /** The operator's roles in the project (the credential may carry only those). */
  roles: readonly string[];
  now: number;
  /** The names this app's credentials have already. */
  taken?: readonly string[];
}

/** The body of POST /v3/users/{user}/application_credentials, or why none can be asked for. */
export function renewerCredentialRequest(input: CredentialRequestInput): { body: { application_credential: Record<string, unknown> } } | { refuse: string; hint: string } {
  const role = DNS_WRITER_ROLES.find((r) => input.roles.includes(r));
  if (role === undefined) {
    return {
      refuse: `your roles in the project (${input.roles.join(', ') || 'none'}) do not include member, which Designate needs to write the _acme-challenge records of ${input.zone.name}`,
      hint: 'Ask the project\'s manager for the member role, or make an application credential that may change the zone\'s recordsets and name its cloud in tls.dnsCloud.',
    };
  }
  return {
    body: {
      application_credential: {
        name: renewerCredentialName(input.app, input.now, input.taken),
        description: `depl: the TLS renewal task of ${input.app} writes _acme-challenge TXT records for ${input.domain} in ${input.zone.name} (DNS-01); made by depl node-up, deleted by depl node-down`,
        expires_at: new Date(input.now + RENEWER_CREDENTIAL_LIFETIME_MS).toISOString(),
        roles: [{ name: role }],
        unrestricted: false,
        access_rules: renewerAccessRules(input.dnsEndpoint, input.zone.id),
      },
    },
  };
}

const usable = (expiresAt: number | null, now: number) => expiresAt === null || expiresAt - now > RENEWER_CREDENTIAL_ROTATE_MS;
const days = (ms: number) => Math.floor(ms / DAY_MS);

/**
 * Before anything is made (the cluster's secrets cannot be read yet): make a credential now when none of this app's
 * has long enough left, so that a cloud refusing it stops node-up with nothing created.
 */
export function credentialNeededUpFront(own: readonly ListedCredential[], now: number): boolean {
  return !own.some((c) => usable(c.expiresAt, now));
}

/**
 * Once the swarm is there: which credential the task is to hold. One made this run wins; else the newest one a
 * swarm secret holds that Keystone still has with long enough left; else one is to be made. The secrets holding any
 * other go (swarm refuses to remove one a running task mounts: its credential stays until a later run).
 */
export function planCredentialHolding(input: { own: readonly ListedCredential[]; held: readonly HeldCredential[]; made?: string; now: number }):
  { current: string | undefined; create: boolean; retireSecrets: string[] } {
  const known = new Map(input.own.map((c) => [c.id, c]));
  const kept = input.made ?? [...input.held]
    .filter((h) => known.has(h.credentialId) && usable(known.get(h.credentialId)!.expiresAt, input.now))
    .sort((a, b) => (b.expiresAt ?? Infinity) - (a.expiresAt ?? Infinity))[0]?.credentialId;
  return { current: kept, create: kept === undefined, retireSecrets: input.held.filter((h) => h.credentialId !== kept).map((h) => h.secret) };
}

/** The app's credentials to delete in Keystone: all but the current one and those a secret still in use holds. */
export function credentialsToDelete(own: readonly ListedCredential[], keep: readonly string[]): ListedCredential[] {
  return own.filter((c) => !keep.includes(c.id));
}

/** The swarm secret's labels for a credential. */
export function heldCredentialLabels(app: string, credentialId: string, expiresAt: number | null): Record<string, string> {
  return {
    [LABELS.app]: app,
    [RENEWER_CREDENTIAL_LABELS.credential]: credentialId,
    ...(expiresAt !== null ? { [RENEWER_CREDENTIAL_LABELS.expires]: new Date(expiresAt).toISOString() } : {}),
  };
}

/** A swarm secret's labels read back (undefined: not one of these). */
export function heldFromLabels(secret: string, labels: Record<string, string>): HeldCredential | undefined {
  const credentialId = labels[RENEWER_CREDENTIAL_LABELS.credential];
  if (credentialId === undefined) return undefined;
  const expires = labels[RENEWER_CREDENTIAL_LABELS.expires];
  const expiresAt = expires === undefined ? null : Date.parse(expires);
  return { secret, credentialId, expiresAt: expiresAt !== null && Number.isFinite(expiresAt) ? expiresAt : null };
}

/**
 * Whether the credential the task holds is to be replaced now (none held, or within RENEWER_CREDENTIAL_ROTATE_MS of
 * its end): node-up replaces it, and so does buildinst, which holds the cluster lock and gives the task the new one.
 */
export function renewerCredentialDue(held: Pick<HeldCredential, 'expiresAt'> | undefined, now: number): boolean {
  return held === undefined || !usable(held.expiresAt, now);
}

/**
 * The line `depl status` (and buildinst, when it could not replace it) says while the held credential is close to
 * its end (the task then cannot renew the wildcard), or undefined while it has long enough: what to run, exactly.
 */
export function heldCredentialWarning(held: HeldCredential, now: number): string | undefined {
  if (usable(held.expiresAt, now)) return undefined;
  const when = new Date(held.expiresAt!).toISOString();
  return held.expiresAt! <= now
    ? `the renewal task's DNS credential expired at ${when}: it cannot renew the DNS-01 wildcard; run depl buildinst (or depl node-up), which replaces it with your cloud login`
    : `the renewal task's DNS credential expires at ${when} (in ${days(held.expiresAt! - now)} days); the next depl buildinst (or depl node-up) replaces it with your cloud login: run one before then`;
}

/** Keystone's expires_at (ISO, without a zone, in UTC; null: never) as ms. */
export function keystoneTime(value: string | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  const at = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`);
  return Number.isFinite(at) ? at : null;
}

/**
 * node-up makes the task's credential when the zero-config domain's certificate is DNS-01 and the operator named
 * no credential of their own (tls.dnsCloud): the provider's login is theirs and stays on their machine.
 */
export function renewerCredentialWanted(config: Pick<DeplConfig, 'provider' | 'tls'>): boolean {
  if (config.provider.type !== 'openstack' || config.provider.dns === undefined) return false;
  const tls = tlsSettings(config);
  return tls.mode === 'acme' && tls.challenge === 'dns-01' && tls.dnsCloud === undefined;
}

/** The one buildinst mounts into the task: the newest a swarm secret holds (node-up retires the others). */
export function currentHeldCredential<T extends HeldCredential>(held: readonly T[]): T | undefined {
  return [...held].sort((a, b) => (b.expiresAt ?? Infinity) - (a.expiresAt ?? Infinity))[0];
}

/** A step of the credential's plan, as node-up (or buildinst's rotation) carries it out. */
export type RenewerCredentialStep =
  | { kind: 'create-credential'; describe: string; undo: string }
  | { kind: 'retire-secret'; secret: string; describe: string }
  | { kind: 'delete-credential'; id: string; describe: string };

export interface RenewerCredentialPlan extends ChangePlan<RenewerCredentialStep> {
  /** create: none usable to replace; reuse: the held one has long enough; rotate: the held one is within RENEWER_CREDENTIAL_ROTATE_MS of its end. */
  action: 'create' | 'reuse' | 'rotate';
}

const untilText = (expiresAt: number | null, now: number) => (expiresAt === null
  ? 'never expires'
  : expiresAt <= now ? `expired ${days(now - expiresAt)} days ago (${new Date(expiresAt).toISOString()})` : `expires in ${days(expiresAt - now)} days (${new Date(expiresAt).toISOString()})`);

/**
 * What node-up will do about the task's credential, as the steps it takes: composed of the decisions it applies
 * (credentialNeededUpFront, then planCredentialHolding and credentialsToDelete), from this app's credentials in
 * Keystone and the swarm secrets holding one (none: no swarm yet). The secret the running task mounts is removed
 * only once the task has the new one, so its credential is kept until then.
 */
export function planRenewerCredential(input: {
  command: string;
  app: string;
  zone: string;
  own: readonly ListedCredential[];
  held: readonly HeldCredential[];
  now: number;
}): RenewerCredentialPlan {
  const { own, held, now } = input;
  const NEW = '(made by this run)';
  const upFront = credentialNeededUpFront(own, now);
  const holding = planCredentialHolding({ own, held, ...(upFront ? { made: NEW } : {}), now });
  const create = upFront || holding.create;
  const mounted = currentHeldCredential(held);
  const known = new Map(own.map((c) => [c.id, c]));
  const notes: string[] = [];
  const steps: RenewerCredentialStep[] = [];
  let action: RenewerCredentialPlan['action'] = 'create';
  if (!create) {
    action = 'reuse';
    const kept = known.get(holding.current!)!;
    notes.push(`the renewal task's DNS credential ${kept.name} (${kept.id}) ${untilText(kept.expiresAt, now)}: kept`);
  } else {
    const replaced = mounted !== undefined ? known.get(mounted.credentialId) : undefined;
    if (replaced !== undefined) {
      action = 'rotate';
      notes.push(`the renewal task's DNS credential ${replaced.name} (${replaced.id}) ${untilText(replaced.expiresAt, now)}, less than ${days(RENEWER_CREDENTIAL_ROTATE_MS)}: a new one replaces it`);
    } else if (mounted !== undefined) {
      notes.push(`the swarm's secret ${mounted.secret} names the credential ${mounted.credentialId}, which Keystone no longer has: a new one replaces it`);
    } else {
      notes.push(held.length === 0 && own.length > 0
        ? 'no swarm secret holds any of this app\'s credentials (Keystone never shows a secret again): a new one is made'
        : 'the renewal task has no DNS credential yet: one is made');
    }
    steps.push({
      kind: 'create-credential',
      describe: `make the application credential ${renewerCredentialPrefix(input.app)}<now> (member role, ${input.zone}'s recordsets only, ${untilText(now + RENEWER_CREDENTIAL_LIFETIME_MS, now)}) in a new swarm secret ${RENEWER_DNS_SECRET}, mounted into the renewal task alone`,
      undo: 'delete it in Keystone',
    });
  }
  const stillMounted: string[] = [];
  for (const secret of holding.retireSecrets) {
    const entry = held.find((h) => h.secret === secret)!;
    if (mounted !== undefined && secret === mounted.secret) {
      stillMounted.push(entry.credentialId);
      steps.push({ kind: 'retire-secret', secret, describe: `remove the swarm secret ${secret} once the renewal task no longer mounts it (depl buildinst gives it the new one); its credential ${entry.credentialId} is deleted then` });
    } else {
      steps.push({ kind: 'retire-secret', secret, describe: `remove the swarm secret ${secret}, which holds the credential ${entry.credentialId}` });
    }
  }
  const current = create ? [] : [holding.current!];
  for (const stale of credentialsToDelete(own, [...current, ...stillMounted])) {
    const why = held.some((h) => h.credentialId === stale.id) ? 'replaced' : 'leftover';
    steps.push({ kind: 'delete-credential', id: stale.id, describe: `delete the ${why} application credential ${stale.name} (${untilText(stale.expiresAt, now)}${why === 'leftover' ? '; no swarm secret holds it' : ''})` });
  }
  return { command: input.command, action, notes, steps };
}
