import { readFile } from 'node:fs/promises';
import { ApplicationCredentials } from '../../apply/openstack/application-credentials.js';
import type { DesignateClient, Zone } from '../../apply/openstack/designate.js';
import { OpenStackApiError } from '../../apply/openstack/http.js';
import { KeystoneSession } from '../../apply/openstack/keystone.js';
import { designateFor, managedDomain } from '../domain.js';
import type { TlsProject } from './certificates.js';
import { planSecrets, type SecretDocument } from '../../plan/services.js';
import { dnsChallengeRecord } from '../../plan/tls/certificates.js';
import { RENEWER_DNS_SECRET, type RenewerDnsCredential } from '../../plan/tls/renewal.js';
import {
  credentialNeededUpFront, credentialsToDelete, currentHeldCredential, heldCredentialLabels, heldCredentialWarning, ownCredentials, planCredentialHolding,
  pendingRetirement, planRenewerCredential, renewerCredentialBlocked, renewerCredentialRequest, renewerCredentialWithoutLogin,
  type HeldCredential, type ListedCredential, type RenewerCredentialPlan, type TaskMount,
} from '../../plan/tls/renewer-credential.js';
import type { SwarmSecretRef } from '../../plan/services.js';
import { isDeplError, OperationError, UserError } from '../../errors.js';
import { applyPlan } from '../apply-plan.js';
import type { Logger } from '../../util/log.js';
import { Secret } from '../../util/secret.js';

/**
 * The renewal task's DNS-01 credential on a zero-config domain (src/plan/tls/renewer-credential.ts decides): node-up
 * makes it with the operator's login before anything else is made (a cloud that refuses stops node-up with nothing
 * created, exit 2), hands it to the swarm once the swarm is there, and retires older ones; node-down deletes them.
 * Why node-up: it is the one command that holds the operator's Keystone login and already keeps the zone's records;
 * the credential is a cloud resource of the cluster, made and removed with it. buildinst and tls renew keep it current
 * by one plan (keepRenewerCredential): under the cluster lock they replace it when it is close to its end and give the
 * task the new one in the same run, and finish retiring a replaced one an earlier run left.
 */
export interface CredentialHolder {
  /** The swarm secrets holding one, from their labels. */
  held(): Promise<HeldCredential[]>;
  store(document: SecretDocument): Promise<void>;
  /** Removes one; false when a running task still mounts it (swarm refuses). */
  retire(secret: string): Promise<boolean>;
}

export interface RenewerCredentialScope {
  app: string;
  domain: string;
  /** The zone's Designate client, on the operator's Keystone session. */
  designate: DesignateClient;
  zone: Zone;
  now: () => number;
  log: Logger;
}

export interface PreparedCredential {
  own: ListedCredential[];
  /** Made this run: its id, expiry and what the task is given. */
  made?: { id: string; expiresAt: number | null; credential: RenewerDnsCredential };
}

/** Before anything is made: this app's credentials in Keystone, and a new one when none has long enough left. */
export async function prepareRenewerCredential(scope: RenewerCredentialScope): Promise<PreparedCredential> {
  const credentials = new ApplicationCredentials(scope.designate.session);
  const own = ownCredentials(scope.app, await credentials.list());
  if (!credentialNeededUpFront(own, scope.now())) return { own };
  return { own, made: await makeCredential(scope, credentials, own) };
}

/**
 * Once the swarm is there: the task's secret holds the current credential (the one made this run, or the one it
 * held already; one is made now when neither is usable), older secrets are removed, and in Keystone every credential
 * of this app that no secret still holds is deleted. Returns what changed, one line each.
 */
export async function holdRenewerCredential(scope: RenewerCredentialScope, prepared: PreparedCredential, holder: CredentialHolder): Promise<string[]> {
  const credentials = new ApplicationCredentials(scope.designate.session);
  const changes: string[] = [];
  const held = await holder.held();
  const plan = planCredentialHolding({ own: prepared.own, held, ...(prepared.made ? { made: prepared.made.id } : {}), now: scope.now() });
  let made = prepared.made;
  if (plan.create) made = await makeCredential(scope, credentials, await credentials.list());
  let current = plan.current;
  if (made !== undefined) {
    current = made.id;
    const secret = await storeCredential(scope, made, holder);
    changes.push(`the renewal task's DNS credential ${made.id} (restricted to ${scope.zone.name}'s recordsets) is in the swarm secret ${secret}`);
  }
  const stillHeld: string[] = [];
  for (const secret of plan.retireSecrets) {
    const entry = held.find((h) => h.secret === secret)!;
    if (await holder.retire(secret)) changes.push(`removed the swarm secret ${secret} of the replaced DNS credential`);
    else stillHeld.push(entry.credentialId);
  }
  // listed again: a credential made in an earlier, interrupted run is deleted too
  const own = ownCredentials(scope.app, await credentials.list());
  for (const stale of credentialsToDelete(own, [...(current !== undefined ? [current] : []), ...stillHeld])) {
    await credentials.delete(stale.id);
    changes.push(`deleted the replaced application credential ${stale.name}`);
  }
  for (const id of stillHeld) scope.log.info(`the renewal task still uses the DNS credential ${id}: it is deleted once the task has the new one (depl buildinst or tls renew gives it, then deletes the old one; or the next node-up)`);
  return changes;
}

/** A credential made this run into its own swarm secret (labelled with its id and expiry); returns the secret's name. */
async function storeCredential(scope: Pick<RenewerCredentialScope, 'app'>, made: NonNullable<PreparedCredential['made']>, holder: CredentialHolder): Promise<string> {
  const [document] = planSecrets(scope.app, [{ name: RENEWER_DNS_SECRET, value: new Secret(JSON.stringify(made.credential)) }]);
  await holder.store({ ...document!, labels: { ...document!.labels, ...heldCredentialLabels(scope.app, made.id, made.expiresAt) } });
  return document!.name;
}

/**
 * `depl node-up --plan`: what node-up will do about the credential (src/plan/tls/renewer-credential.ts
 * planRenewerCredential), from this app's credentials in Keystone and the swarm secrets holding one (`held`
 * undefined: the swarm could not be asked, and the plan says it assumed none). Changes nothing.
 */
export async function planRenewerCredentialNow(scope: Pick<RenewerCredentialScope, 'app' | 'designate' | 'zone' | 'now'>, held: readonly HeldCredential[] | { unknown: string }): Promise<RenewerCredentialPlan> {
  const own = ownCredentials(scope.app, await new ApplicationCredentials(scope.designate.session).list());
  const asked = 'unknown' in held ? [] : held;
  const plan = planRenewerCredential({ command: 'depl node-up', app: scope.app, zone: scope.zone.name, own, held: asked, now: scope.now() });
  return 'unknown' in held ? { ...plan, notes: [`the swarm's secrets could not be read (${held.unknown}): planned as if it holds none`, ...plan.notes] } : plan;
}

/** The swarm's secrets as buildinst and tls renew mount one: each with its reference. */
export interface MountableCredentialHolder extends CredentialHolder {
  held(): Promise<Array<HeldCredential & { ref: SwarmSecretRef }>>;
}

/** What buildinst and tls renew need to keep the task's credential current. */
export interface RenewerCredentialRun {
  /** As the plan names it: `depl buildinst`, `depl tls renew`. */
  command: string;
  app: string;
  holder: MountableCredentialHolder;
  /** The operator's Designate and the zone: the provider's cloud, never asked for a password (buildinst may run unattended). */
  signIn: () => Promise<Omit<RenewerCredentialScope, 'now' | 'log' | 'app'>>;
  now: () => number;
  log: Logger;
  /** How this command gives the renewal task a secret (src/plan/tls/renewer-credential.ts TaskMount), and doing it; absent: no task is installed. */
  mount?: { how: TaskMount; give(ref: SwarmSecretRef): Promise<void> };
}

export interface KeptCredential {
  plan: RenewerCredentialPlan;
  /** The secret the task is to mount (the new one when one was made); undefined: none is held. */
  ref: SwarmSecretRef | undefined;
  /** The plan gave the task its secret (otherwise buildinst installs the task with `ref`). */
  mounted: boolean;
  /** Replaced credentials kept because swarm kept their secret (a task being replaced mounted it): the next run removes them. */
  pending: string[];
}

/**
 * buildinst and tls renew, under the cluster lock: the task's credential kept current by ONE plan
 * (src/plan/tls/renewer-credential.ts planRenewerCredential, as node-up --plan shows it), applied step by step. The
 * swarm's secrets are read first; only when they show something to do (the held credential is due: none, or 60 days
 * or less left; or a replaced one's secret is still there) is the operator's login asked for (`signIn`), and Keystone's
 * list planned from. A new credential is made and stored, the task given it (`mount`), then older secrets removed and
 * their credentials deleted; a secret swarm keeps (a task being replaced still mounts it) keeps its credential, which
 * the next run deletes. A login that cannot be had, or a cloud that refuses, is a warning saying what to run: the
 * task keeps the credential it has. `dryRun`: the plan only (Keystone is read, nothing changes).
 */
export async function keepRenewerCredential(run: RenewerCredentialRun, options: { dryRun?: boolean } = {}): Promise<KeptCredential> {
  const { holder, log, command } = run;
  const held = await holder.held();
  const now = run.now();
  const current = currentHeldCredential(held);
  const unchanged = (plan: RenewerCredentialPlan): KeptCredential => ({ plan, ref: current?.ref, mounted: false, pending: [] });
  const quiet = renewerCredentialWithoutLogin({ command, held, now });
  if (quiet !== undefined) return unchanged(quiet);
  let scope: RenewerCredentialScope;
  let credentials: ApplicationCredentials;
  let plan: RenewerCredentialPlan;
  try {
    scope = { ...(await run.signIn()), app: run.app, now: run.now, log };
    credentials = new ApplicationCredentials(scope.designate.session);
    const own = ownCredentials(run.app, await credentials.list());
    plan = planRenewerCredential({ command, app: run.app, zone: scope.zone.name, own, held, now, ...(run.mount !== undefined ? { mount: run.mount.how } : {}) });
  } catch (error) {
    if (!isDeplError(error)) throw error;
    const blocked = renewerCredentialBlocked({ command, held, now, reason: error.message });
    log.warn(blocked.notes[0]!);
    return unchanged(blocked);
  }
  if (options.dryRun) return unchanged(plan);

  let made: { id: string; secret: string } | undefined;
  let mountedRef: SwarmSecretRef | undefined;
  let mountFailed = false;
  const kept = new Set<string>();
  const pending: string[] = [];
  try {
    await applyPlan(plan, {
      async run(step) {
        switch (step.kind) {
          case 'create-credential': {
            const fresh = await makeCredential(scope, credentials, await credentials.list());
            made = { id: fresh.id, secret: await storeCredential(scope, fresh, holder) };
            return;
          }
          case 'mount-credential': {
            const name = made?.secret ?? step.secret;
            const ref = (await holder.held()).find((h) => h.secret === name)?.ref;
            if (ref === undefined) throw new OperationError(`the swarm secret ${name ?? '(none)'} of the renewal task's DNS credential is not there`, 'Run the command again.', 'RENEWER_SECRET_GONE');
            try {
              await run.mount!.give(ref);
            } catch (error) {
              mountFailed = true;
              throw error;
            }
            mountedRef = ref;
            return;
          }
          case 'retire-secret': {
            if (await holder.retire(step.secret)) return;
            kept.add(step.credentialId);
            const line = pendingRetirement(step);
            pending.push(line);
            log.info(line);
            return;
          }
          case 'delete-credential':
            // its secret is still there: deleting the credential would leave a task being replaced without one
            if (kept.has(step.id)) return;
            await credentials.delete(step.id);
            return;
        }
      },
      async undo(step) {
        if (step.kind !== 'create-credential' || made === undefined) return;
        // a secret swarm keeps is mounted somewhere: its credential stays, and the next run sorts them out
        if (await holder.retire(made.secret)) await credentials.delete(made.id);
      },
    }, { log });
  } catch (error) {
    if (!isDeplError(error) || mountFailed) throw error;
    const said = current === undefined ? 'the renewal task has no DNS credential' : heldCredentialWarning(current, now) ?? 'the renewal task keeps its DNS credential';
    log.warn(`${said} (${command} could not replace it: ${error.message})`);
    return { plan, ref: current?.ref, mounted: false, pending };
  }
  const ref = mountedRef ?? (made !== undefined ? (await holder.held()).find((h) => h.secret === made!.secret)?.ref : current?.ref);
  return { plan, ref, mounted: mountedRef !== undefined, pending };
}

/**
 * The operator's Designate and the zero-config domain's zone, for replacing the task's credential: the provider's
 * cloud from clouds.yaml (and secure.yaml or OS_PASSWORD), never asked for a password (buildinst may run unattended).
 */
export async function operatorDesignate(project: TlsProject): Promise<Omit<RenewerCredentialScope, 'now' | 'log' | 'app'>> {
  const { config } = project;
  const managed = managedDomain(config);
  if (managed === undefined || config.provider.type !== 'openstack') throw new OperationError('the task\'s DNS credential is made for provider.dns only', undefined, 'TLS_NO_DNS_CLOUD');
  const designate = await designateFor({ root: project.root, ...(config.provider.cloud !== undefined ? { cloud: config.provider.cloud } : {}), ...(config.provider.region !== undefined ? { region: config.provider.region } : {}) }, { interactive: false });
  const zone = await designate.zoneNamed(managed.zone);
  if (zone === undefined) throw new UserError(`provider.dns.zone ${managed.zone} is not a Designate zone of this project`, 'Fix provider.dns.zone in depl.yaml.', 'DNS_ZONE_MISSING');
  return { designate, zone, domain: managed.domain };
}

/** node-down: every credential node-up made for this app, in Keystone. */
export async function deleteRenewerCredentials(scope: Pick<RenewerCredentialScope, 'app' | 'designate' | 'log'>): Promise<string[]> {
  const credentials = new ApplicationCredentials(scope.designate.session);
  const own = ownCredentials(scope.app, await credentials.list());
  for (const c of own) {
    await credentials.delete(c.id);
    scope.log.step(`deleted the renewal task's application credential ${c.name}`);
  }
  return own.map((c) => c.name);
}

/**
 * Makes one, then signs in with it and reads the zone's challenge records as the task will: a Designate that refuses
 * tokens with access rules (its keystonemiddleware has no service_type) is found here, and the credential deleted.
 */
async function makeCredential(scope: RenewerCredentialScope, credentials: ApplicationCredentials, listed: readonly ListedCredential[]): Promise<NonNullable<PreparedCredential['made']>> {
  const session = scope.designate.session;
  const request = renewerCredentialRequest({
    app: scope.app, domain: scope.domain, zone: scope.zone, dnsEndpoint: await session.endpoint('dns'), roles: await session.roles(), now: scope.now(),
    taken: listed.map((c) => c.name),
  });
  if ('refuse' in request) throw new UserError(`the renewal task's DNS credential cannot be made: ${request.refuse}`, request.hint, 'APP_CREDENTIAL_REFUSED');
  const created = await credentials.create(request.body);
  if (created.accessRules === undefined) {
    scope.log.warn(`this cloud's Keystone keeps no access rules (it is older than Train): the renewal task's credential can do what the member role can in the project until ${created.expiresAt === null ? 'it is deleted' : new Date(created.expiresAt).toISOString()}, not only change ${scope.zone.name}'s records. To narrow it, make one yourself and name its cloud in tls.dnsCloud.`);
  }
  const given = session.credentials;
  const caCert = given.caCertFile === undefined ? undefined : await readFile(given.caCertFile, 'utf8');
  const credential: RenewerDnsCredential = {
    authUrl: given.authUrl,
    ...(given.regionName !== undefined ? { regionName: given.regionName } : {}),
    interface: given.interface,
    auth: { type: 'application_credential', id: created.id, secret: created.secret },
    ...(caCert !== undefined ? { caCert } : {}),
    ...(given.insecure === true ? { insecure: true } : {}),
    zone: scope.zone,
  };
  try {
    await checkCredential(scope, credential);
  } catch (error) {
    await credentials.delete(created.id).catch((e: Error) => scope.log.warn(`could not delete the application credential ${created.id}: ${e.message} (openstack application credential delete ${created.id})`));
    throw error;
  }
  return { id: created.id, expiresAt: created.expiresAt, credential };
}

async function checkCredential(scope: RenewerCredentialScope, credential: RenewerDnsCredential): Promise<void> {
  const { DesignateClient } = await import('../../apply/openstack/designate.js');
  const session = new KeystoneSession({ ...scope.designate.session.credentials, auth: credential.auth, source: 'the renewal task\'s new DNS credential' }, { ...(scope.designate.session.dispatcher ? { dispatcher: scope.designate.session.dispatcher } : {}) });
  try {
    await new DesignateClient(session).recordSetsNamed(scope.zone, dnsChallengeRecord(scope.domain));
  } catch (error) {
    if (error instanceof OpenStackApiError && (error.status === 401 || error.status === 403)) {
      throw new UserError(
        `Designate refused the renewal task's new credential, restricted to ${scope.zone.name}'s recordsets (HTTP ${error.status}): this cloud's DNS service does not accept tokens with access rules`,
        'Ask the cloud\'s operators to set service_type = dns in Designate\'s [keystone_authtoken], or make an application credential for the zone yourself and name its cloud in tls.dnsCloud. Nothing was created.',
        'DNS_ACCESS_RULES_REFUSED',
        { cause: error },
      );
    }
    throw error;
  }
}
