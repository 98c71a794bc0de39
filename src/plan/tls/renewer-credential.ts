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
 * makes a new one and retires the old, and so do buildinst and tls renew (renewerCredentialDue), which give the task
 * the new one in the same run by the same plan (planRenewerCredential); node-down deletes every one it made.
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
 * its end): node-up replaces it, and so do buildinst and tls renew, which hold the cluster lock and give the task the new one.
 */
export function renewerCredentialDue(held: Pick<HeldCredential, 'expiresAt'> | undefined, now: number): boolean {
  return held === undefined || !usable(held.expiresAt, now);
}

/** Which commands replace the task's credential with the operator's login, as the warnings name them. */
const REPLACED_BY = 'the next depl buildinst, depl tls renew or depl node-up';

/**
 * The line `depl status` (and buildinst or tls renew, when they could not replace it) says while the held credential
 * is close to its end (the task then cannot renew the wildcard), or undefined while it has long enough: what to run.
 */
export function heldCredentialWarning(held: HeldCredential, now: number): string | undefined {
  if (usable(held.expiresAt, now)) return undefined;
  const when = new Date(held.expiresAt!).toISOString();
  return held.expiresAt! <= now
    ? `the renewal task's DNS credential expired at ${when}: it cannot renew the DNS-01 wildcard; run depl buildinst, depl tls renew or depl node-up, which replaces it with your cloud login`
    : `the renewal task's DNS credential expires at ${when} (in ${days(held.expiresAt! - now)} days); ${REPLACED_BY} replaces it with your cloud login: run one before then`;
}

/**
 * The swarm secrets of replaced credentials still there (besides the current one): a run swarm refused to remove one
 * for (a task being replaced still mounted it) leaves it and its credential in Keystone, and the next run that signs
 * in removes both. One line each, for `depl status`.
 */
export function pendingCredentialRetirements(held: readonly HeldCredential[]): string[] {
  const current = currentHeldCredential(held);
  return held.filter((h) => h !== current).map(pendingRetirement);
}

/** One replaced credential's secret swarm kept (pendingCredentialRetirements), as status and the run that left it say. */
export function pendingRetirement(held: Pick<HeldCredential, 'secret' | 'credentialId'>): string {
  return `the swarm secret ${held.secret} of the replaced DNS credential ${held.credentialId} is still there (swarm kept it while a task being replaced mounted it): ${REPLACED_BY} removes it and deletes the credential in Keystone`;
}

/**
 * buildinst and tls renew sign in only when the swarm alone shows something to do: the credential the task holds is
 * due (none, or within RENEWER_CREDENTIAL_ROTATE_MS of its end), or a replaced one's secret is still there. Otherwise
 * this is their plan (nothing changes, Keystone is not asked); undefined: sign in and plan with Keystone's list
 * (planRenewerCredential).
 */
export function renewerCredentialWithoutLogin(input: { command: string; held: readonly HeldCredential[]; now: number }): RenewerCredentialPlan | undefined {
  const current = currentHeldCredential(input.held);
  if (current === undefined || input.held.length > 1 || renewerCredentialDue(current, input.now)) return undefined;
  return {
    command: input.command, action: 'reuse', steps: [],
    notes: [`the renewal task's DNS credential ${current.credentialId} (swarm secret ${current.secret}) ${untilText(current.expiresAt, input.now)}: kept (Keystone not asked)`],
  };
}

/** Why buildinst or tls renew changed nothing about the credential when they could not sign in or Keystone refused. */
export function renewerCredentialBlocked(input: { command: string; held: readonly HeldCredential[]; now: number; reason: string }): RenewerCredentialPlan {
  const current = currentHeldCredential(input.held);
  const said = current === undefined
    ? 'the renewal task has no DNS credential from node-up: run depl node-up, which makes one; until then run depl tls renew before the wildcard is due'
    : heldCredentialWarning(current, input.now) ?? pendingCredentialRetirements(input.held).join('; ');
  return { command: input.command, action: 'blocked', steps: [], notes: [`${said} (${input.command} could not sign in to replace it: ${input.reason})`] };
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

/** A step of the credential's plan, as node-up, buildinst or tls renew carries it out. */
export type RenewerCredentialStep =
  | { kind: 'create-credential'; describe: string; undo: string }
  /** buildinst installs the renewal task with the secret; tls renew installs it again from its spec (`secret`: the held one to mount when none is made). */
  | { kind: 'mount-credential'; secret?: string; describe: string }
  | { kind: 'retire-secret'; secret: string; credentialId: string; describe: string }
  | { kind: 'delete-credential'; id: string; describe: string };

export interface RenewerCredentialPlan extends ChangePlan<RenewerCredentialStep> {
  /**
   * create: none usable to replace; reuse: the held one has long enough; rotate: the held one is within
   * RENEWER_CREDENTIAL_ROTATE_MS of its end; blocked: the operator's login could not be had (nothing changes).
   */
  action: 'create' | 'reuse' | 'rotate' | 'blocked';
}

const untilText = (expiresAt: number | null, now: number) => (expiresAt === null
  ? 'never expires'
  : expiresAt <= now ? `expired ${days(now - expiresAt)} days ago (${new Date(expiresAt).toISOString()})` : `expires in ${days(expiresAt - now)} days (${new Date(expiresAt).toISOString()})`);

/** How a command gives the renewal task the current secret: buildinst installs the task; tls renew installs it again from its spec. */
export type TaskMount = 'install' | 'reinstall';

/**
 * What node-up, buildinst or tls renew will do about the task's credential, as the steps they take: composed of the
 * decisions node-up applies (credentialNeededUpFront, then planCredentialHolding and credentialsToDelete), from this
 * app's credentials in Keystone and the swarm secrets holding one (none: no swarm yet). node-up does not touch the
 * task (`mount` absent): the secret the running task mounts is removed only once the task has the new one (the next
 * buildinst or tls renew), so its credential is kept until then. buildinst and tls renew give the task the current
 * secret (`mount`) before any older one is removed; swarm may still keep one a task being replaced mounts, and its
 * credential then stays for the next run (pendingCredentialRetirements).
 */
export function planRenewerCredential(input: {
  command: string;
  app: string;
  zone: string;
  own: readonly ListedCredential[];
  held: readonly HeldCredential[];
  now: number;
  mount?: TaskMount;
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
      undo: 'delete it in Keystone and remove its swarm secret',
    });
  }
  const keptSecret = create ? undefined : held.find((h) => h.credentialId === holding.current)?.secret;
  if (input.mount !== undefined && (create || holding.retireSecrets.length > 0)) {
    const which = keptSecret === undefined ? 'the new secret' : `the swarm secret ${keptSecret}`;
    steps.push({
      kind: 'mount-credential',
      ...(keptSecret !== undefined ? { secret: keptSecret } : {}),
      describe: input.mount === 'install'
        ? `install the renewal task with ${which}`
        : `install the renewal task again with ${which} (its settings and image as the swarm has them), when one is installed`,
    });
  }
  const stillMounted: string[] = [];
  for (const secret of holding.retireSecrets) {
    const entry = held.find((h) => h.secret === secret)!;
    const base = { kind: 'retire-secret' as const, secret, credentialId: entry.credentialId };
    if (input.mount === undefined && mounted !== undefined && secret === mounted.secret) {
      stillMounted.push(entry.credentialId);
      steps.push({ ...base, describe: `remove the swarm secret ${secret} once the renewal task no longer mounts it (depl buildinst or tls renew gives it the new one); its credential ${entry.credentialId} is deleted then` });
    } else {
      steps.push({ ...base, describe: `remove the swarm secret ${secret}, which holds the credential ${entry.credentialId} (should swarm keep it while a task being replaced mounts it, it and its credential go on the next run)` });
    }
  }
  const current = create ? [] : [holding.current!];
  for (const stale of credentialsToDelete(own, [...current, ...stillMounted])) {
    const why = held.some((h) => h.credentialId === stale.id) ? 'replaced' : 'leftover';
    steps.push({ kind: 'delete-credential', id: stale.id, describe: `delete the ${why} application credential ${stale.name} (${untilText(stale.expiresAt, now)}${why === 'leftover' ? '; no swarm secret holds it)' : ') once its swarm secret is removed'}` });
  }
  return { command: input.command, action, notes, steps };
}

/** The credential's plan as node-up --plan, and tls renew (with or without --dry-run), print it. */
export function renderCredentialPlanLines(plan: RenewerCredentialPlan): string[] {
  return [
    `The renewal task's DNS credential (${plan.action}):`,
    ...plan.notes.map((n) => `  = ${n}`),
    ...plan.steps.map((s) => `  + ${s.describe}`),
  ];
}
