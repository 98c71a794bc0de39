import { readFile } from 'node:fs/promises';
import { ApplicationCredentials } from '../../apply/openstack/application-credentials.js';
import type { DesignateClient, Zone } from '../../apply/openstack/designate.js';
import { OpenStackApiError } from '../../apply/openstack/http.js';
import { KeystoneSession } from '../../apply/openstack/keystone.js';
import { UserError } from '../../errors.js';
import { planSecrets, type SecretDocument } from '../../plan/services.js';
import { dnsChallengeRecord } from '../../plan/tls/certificates.js';
import { RENEWER_DNS_SECRET, type RenewerDnsCredential } from '../../plan/tls/renewal.js';
import {
  credentialNeededUpFront, credentialsToDelete, currentHeldCredential, heldCredentialLabels, heldCredentialWarning, ownCredentials, planCredentialHolding,
  planRenewerCredential, renewerCredentialDue, renewerCredentialRequest, type HeldCredential, type ListedCredential, type RenewerCredentialPlan,
} from '../../plan/tls/renewer-credential.js';
import type { SwarmSecretRef } from '../../plan/services.js';
import { isDeplError } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { Secret } from '../../util/secret.js';

/**
 * The renewal task's DNS-01 credential on a zero-config domain (src/plan/tls/renewer-credential.ts decides): node-up
 * makes it with the operator's login before anything else is made (a cloud that refuses stops node-up with nothing
 * created, exit 2), hands it to the swarm once the swarm is there, and retires older ones; node-down deletes them.
 * Why node-up: it is the one command that holds the operator's Keystone login and already keeps the zone's records;
 * the credential is a cloud resource of the cluster, made and removed with it. buildinst mounts the swarm secret into
 * the task, and replaces the credential first when it is close to its end (renewerCredentialForTask): it holds the
 * cluster lock and reinstalls the task, so the task gets the new one in the same run.
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
    const [document] = planSecrets(scope.app, [{ name: RENEWER_DNS_SECRET, value: new Secret(JSON.stringify(made.credential)) }]);
    await holder.store({ ...document!, labels: { ...document!.labels, ...heldCredentialLabels(scope.app, made.id, made.expiresAt) } });
    changes.push(`the renewal task's DNS credential ${made.id} (restricted to ${scope.zone.name}'s recordsets) is in the swarm secret ${document!.name}`);
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
  for (const id of stillHeld) scope.log.info(`the renewal task still uses the DNS credential ${id}: it is deleted once the task has the new one (depl buildinst gives it, then deletes the old one; or the next node-up)`);
  return changes;
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

/** The swarm's secrets as buildinst mounts one: each with its reference. */
export interface MountableCredentialHolder extends CredentialHolder {
  held(): Promise<Array<HeldCredential & { ref: SwarmSecretRef }>>;
}

/**
 * buildinst, under the cluster lock, before it (re)installs the renewal task: the secret the task is to mount. When
 * the held credential is due (none, or 60 days or less left: src/plan/tls/renewer-credential.ts renewerCredentialDue)
 * it is replaced as node-up replaces it, with the operator's login (`signIn`: the provider's cloud, never asked for
 * a password, as buildinst may run unattended), so the task is given the new one in this run; `retire`, called once
 * the task mounts it, removes the old secret and deletes the old credential. A login that cannot be had, or a cloud
 * that refuses, is a warning saying what to run: the version is installed all the same.
 */
export async function renewerCredentialForTask(
  input: { app: string; holder: MountableCredentialHolder; signIn: () => Promise<Omit<RenewerCredentialScope, 'now' | 'log' | 'app'>>; now: () => number; log: Logger },
): Promise<{ ref: SwarmSecretRef | undefined; changes: string[]; retire(): Promise<string[]> }> {
  const { holder, log } = input;
  const current = currentHeldCredential(await holder.held());
  const nothing = async () => [];
  if (!renewerCredentialDue(current, input.now())) return { ref: current!.ref, changes: [], retire: nothing };
  let scope: RenewerCredentialScope;
  let changes: string[];
  try {
    scope = { ...(await input.signIn()), app: input.app, now: input.now, log };
    changes = await holdRenewerCredential(scope, await prepareRenewerCredential(scope), holder);
  } catch (error) {
    if (!isDeplError(error)) throw error;
    const said = current === undefined
      ? 'the renewal task has no DNS credential from node-up: run depl node-up, which makes one; until then run depl tls renew before the wildcard is due'
      : heldCredentialWarning(current, input.now())!;
    log.warn(`${said} (buildinst could not replace it: ${error.message})`);
    return { ref: current?.ref, changes: [], retire: nothing };
  }
  const made = currentHeldCredential(await holder.held());
  return {
    ref: made?.ref,
    changes,
    // the task mounts the new one now: the old secret can go, and with it the old credential
    retire: async () => holdRenewerCredential(scope, { own: ownCredentials(input.app, await new ApplicationCredentials(scope.designate.session).list()) }, holder),
  };
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
