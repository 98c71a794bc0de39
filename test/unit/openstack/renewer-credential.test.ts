import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { DesignateClient, Zone } from '../../../src/apply/openstack/designate.js';
import { KeystoneSession } from '../../../src/apply/openstack/keystone.js';
import { designateResponderWith } from '../../../src/apply/tls/responders.js';
import { loadConfig } from '../../../src/config/load.js';
import { UserError } from '../../../src/errors.js';
import type { SecretDocument, SwarmSecretRef } from '../../../src/plan/services.js';
import type { RenewerDnsCredential } from '../../../src/plan/tls/renewal.js';
import { heldFromLabels, pendingCredentialRetirements, type HeldCredential } from '../../../src/plan/tls/renewer-credential.js';
import type { Logger } from '../../../src/util/log.js';
import { designateCloud } from '../../../src/workflows/adapter-slices.js';
import { nodeInputsFor } from '../../../src/workflows/command-inputs.js';
import { designateFor } from '../../../src/workflows/domain.js';
import { nodeUp } from '../../../src/workflows/node-up.js';
import {
  deleteRenewerCredentials, holdRenewerCredential, keepRenewerCredential, prepareRenewerCredential, type MountableCredentialHolder, type RenewerCredentialRun, type RenewerCredentialScope,
} from '../../../src/workflows/tls/renewer-credential.js';
import { passwordLoginEnv, startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * The credential node-up makes for the renewal task, against the emulator's Keystone (application credentials and
 * access rules as Keystone 22 and keystonemiddleware answer) and Designate: what is asked for, that its tokens reach
 * the zone's recordsets and nothing else, that the task's DNS-01 path writes and removes its TXT record with it, that
 * re-runs reuse or rotate without piling up, node-down's cleanup, and each refusal with nothing left behind.
 */
describe('the renewal task\'s DNS credential, made by node-up', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  let designate: DesignateClient;
  let zone: Zone;
  const zoneName = 'myproject.cloud.edu.au.';
  const DAY = 86_400_000;

  /** The swarm's secrets, in memory: what node-up stores, and which a running task mounts. */
  class MemoryHolder implements MountableCredentialHolder {
    readonly secrets = new Map<string, SecretDocument>();
    readonly mounted = new Set<string>();
    /** Secrets a task being replaced still mounts (swarm refuses to remove them until it is gone). */
    readonly lingering = new Set<string>();
    async held(): Promise<Array<HeldCredential & { ref: SwarmSecretRef }>> {
      return [...this.secrets.values()].flatMap((d) => {
        const held = heldFromLabels(d.name, d.labels);
        return held === undefined ? [] : [{ ...held, ref: { id: `id-${d.name}`, name: d.name } }];
      });
    }
    async store(document: SecretDocument): Promise<void> {
      this.secrets.set(document.name, document);
    }
    async retire(secret: string): Promise<boolean> {
      if (this.mounted.has(secret) || this.lingering.has(secret)) return false;
      this.secrets.delete(secret);
      return true;
    }
    only(): RenewerDnsCredential {
      expect(this.secrets.size).toBe(1);
      return JSON.parse([...this.secrets.values()][0]!.data.reveal()) as RenewerDnsCredential;
    }
  }

  const lines: string[] = [];
  const log: Logger = { debug: (m) => lines.push(m), info: (m) => lines.push(m), warn: (m) => lines.push(`WARN ${m}`), error: (m) => lines.push(m), step: (m) => lines.push(m) };
  const scope = (app: string, now = Date.now()): RenewerCredentialScope => ({ app, domain: `${app}.myproject.cloud.edu.au`, designate, zone, now: () => now, log });
  const mine = (app: string) => emulator.applicationCredentials().filter((c) => c.name?.startsWith(`depl-${app}-`));
  const credentialPosts = () => emulator.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/application_credentials')).length;

  beforeAll(async () => {
    emulator = await startOpenStackEmulator({ servers: { createServer: async () => ({ address: '10.8.0.1' }), deleteServer: async () => {} }, projectName: 'myproject', dnsPublishDelayMs: 20 });
    emulator.designate.addZone(zoneName);
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-renewer-credential-'));
    const config = { config: { provider: { type: 'openstack' as const } }, file: path.join(dir, 'depl.yaml'), root: dir };
    designate = await designateFor(designateCloud(config as never), { env: passwordLoginEnv(emulator), cwd: dir, interactive: false });
    zone = (await designate.zoneNamed(zoneName))!;
  });
  afterAll(async () => {
    await emulator?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is restricted as asked, lives in the swarm secret alone, and the task answers DNS-01 in the zone with it and nothing else', async () => {
    const holder = new MemoryHolder();
    const prepared = await prepareRenewerCredential(scope('shop'));
    const changes = await holdRenewerCredential(scope('shop'), prepared, holder);
    const [made] = mine('shop');
    expect(made).toMatchObject({ roles: ['member'], unrestricted: false, user: 'demo' });
    expect(made!.expiresAt! - Date.now()).toBeGreaterThan(364 * DAY);
    expect(made!.accessRules!.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /dns/v2/zones/${zone.id}/recordsets`, `POST /dns/v2/zones/${zone.id}/recordsets`,
      `GET /dns/v2/zones/${zone.id}/recordsets/*`, `PUT /dns/v2/zones/${zone.id}/recordsets/*`, `DELETE /dns/v2/zones/${zone.id}/recordsets/*`,
    ]);
    const given = holder.only();
    expect(given).toMatchObject({ authUrl: emulator.authUrl, auth: { type: 'application_credential', id: made!.id, secret: made!.secret }, zone: { id: zone.id, name: zoneName } });
    expect([...holder.secrets.values()][0]!.labels).toMatchObject({ 'depl.app': 'shop', 'depl.renewer.credential': made!.id });
    // the secret is never in what node-up says
    expect(changes.join('\n') + lines.join('\n')).not.toContain(made!.secret);

    // the task's DNS-01 path, as src/tls-renewer/main.ts takes it: the TXT value goes in and comes off again
    const responder = await designateResponderWith(given);
    await responder.present('*.shop.myproject.cloud.edu.au', 'token', 'key-authorization');
    expect(emulator.designate.records('_acme-challenge.shop.myproject.cloud.edu.au.', 'TXT')).toEqual(['"key-authorization"']);
    await responder.cleanup();
    await emulator.designate.settle();
    expect(emulator.designate.records('_acme-challenge.shop.myproject.cloud.edu.au.', 'TXT')).toEqual([]);

    // with its token, listing the project's zones (or anything outside the zone's recordsets) is refused
    const token = await new KeystoneSession({ authUrl: emulator.authUrl, interface: 'public', auth: given.auth, source: 'test' }).token();
    const asked = async (p: string) => (await fetch(`${emulator.url}${p}`, { headers: { 'x-auth-token': token } })).status;
    expect(await asked('/dns/v2/zones')).toBe(401);
    expect(await asked(`/dns/v2/zones/${zone.id}`)).toBe(401);
    expect(await asked('/compute/v2.1/servers')).toBe(401);
    expect(await asked(`/dns/v2/zones/${zone.id}/recordsets`)).toBe(200);
  });

  it('a re-run reuses it: nothing asked of Keystone but its list, nothing changed', async () => {
    const holder = new MemoryHolder();
    await holdRenewerCredential(scope('again'), await prepareRenewerCredential(scope('again')), holder);
    const posts = credentialPosts();
    const changes = await holdRenewerCredential(scope('again'), await prepareRenewerCredential(scope('again')), holder);
    expect(changes).toEqual([]);
    expect(credentialPosts()).toBe(posts);
    expect(mine('again')).toHaveLength(1);
  });

  it('close to its end it is replaced; the old one goes once no task mounts it, never more than two at a time', async () => {
    const holder = new MemoryHolder();
    const start = Date.now();
    await holdRenewerCredential(scope('rotate', start), await prepareRenewerCredential(scope('rotate', start)), holder);
    const [first] = mine('rotate');
    // the running task mounts the first secret
    holder.mounted.add([...holder.secrets.keys()][0]!);
    const later = start + 310 * DAY;
    const changes = await holdRenewerCredential(scope('rotate', later), await prepareRenewerCredential(scope('rotate', later)), holder);
    expect(changes).toEqual([expect.stringContaining('the renewal task\'s DNS credential')]);
    expect(mine('rotate').map((c) => c.id)).toEqual([first!.id, expect.not.stringMatching(first!.id)]);
    expect(holder.secrets.size).toBe(2);
    // buildinst gave the task the new one: the next node-up retires the old secret and deletes the old credential
    holder.mounted.clear();
    const next = await holdRenewerCredential(scope('rotate', later + DAY), await prepareRenewerCredential(scope('rotate', later + DAY)), holder);
    expect(next).toEqual([expect.stringContaining('removed the swarm secret'), expect.stringContaining(`deleted the replaced application credential ${first!.name}`)]);
    expect(mine('rotate')).toHaveLength(1);
    expect(holder.only().auth.id).toBe(mine('rotate')[0]!.id);
  });

  /** buildinst's run of the plan: it installs the task with the secret it is given (the holder's `mounted`). */
  const buildinstRun = (holder: MemoryHolder, signIn: RenewerCredentialRun['signIn'], now: number, mounts: string[] = [], app = 'build'): RenewerCredentialRun => ({
    command: 'depl buildinst', app, holder, signIn, now: () => now, log,
    mount: {
      how: 'install',
      async give(ref) {
        mounts.push(ref.name);
        // the task's spec mounts the new secret alone; its old task may still hold the old one (lingering)
        holder.mounted.clear();
        holder.mounted.add(ref.name);
      },
    },
  });

  it('buildinst, under the lock, replaces one close to its end with the operator\'s login, gives the task the new one, then retires the old', async () => {
    const holder = new MemoryHolder();
    const start = Date.now();
    await holdRenewerCredential(scope('build', start), await prepareRenewerCredential(scope('build', start)), holder);
    const [first] = mine('build');
    const firstSecret = [...holder.secrets.keys()][0]!;
    holder.mounted.add(firstSecret);
    let signIns = 0;
    const signIn = async () => {
      signIns += 1;
      return { designate, zone, domain: 'build.myproject.cloud.edu.au' };
    };
    // 100 days on, 265 left: the task keeps its secret and buildinst asks Keystone nothing
    const asked = emulator.requests.length;
    const early = await keepRenewerCredential(buildinstRun(holder, signIn, start + 100 * DAY));
    expect(early).toMatchObject({ ref: { name: firstSecret }, mounted: false, pending: [], plan: { action: 'reuse', steps: [] } });
    expect([signIns, emulator.requests.length]).toEqual([0, asked]);
    // 310 days on, 55 left: a new one, the task installed with it, then the old secret and credential go
    const mounts: string[] = [];
    const rotation = await keepRenewerCredential(buildinstRun(holder, signIn, start + 310 * DAY, mounts));
    expect(signIns).toBe(1);
    expect(rotation.plan.action).toBe('rotate');
    expect(rotation.plan.steps.map((s) => s.kind)).toEqual(['create-credential', 'mount-credential', 'retire-secret', 'delete-credential']);
    expect(rotation.ref?.name).not.toBe(firstSecret);
    expect([rotation.mounted, mounts]).toEqual([true, [rotation.ref!.name]]);
    expect(rotation.pending).toEqual([]);
    expect([...holder.secrets.keys()]).toEqual([rotation.ref!.name]);
    expect(mine('build').map((c) => c.id)).toEqual([holder.only().auth.id]);
    expect(mine('build')[0]!.id).not.toBe(first!.id);
  });

  it('a secret swarm keeps (a task being replaced still mounts it) keeps its credential; the next run removes both, and status says so meanwhile', async () => {
    const holder = new MemoryHolder();
    const start = Date.now();
    await holdRenewerCredential(scope('linger', start), await prepareRenewerCredential(scope('linger', start)), holder);
    const [first] = mine('linger');
    const firstSecret = [...holder.secrets.keys()][0]!;
    const signIn = async () => ({ designate, zone, domain: 'linger.myproject.cloud.edu.au' });
    // the old task is still being replaced when buildinst removes its secret: swarm refuses
    holder.lingering.add(firstSecret);
    const rotation = await keepRenewerCredential(buildinstRun(holder, signIn, start + 310 * DAY, [], 'linger'));
    expect(rotation.pending).toEqual([`the swarm secret ${firstSecret} of the replaced DNS credential ${first!.id} is still there (swarm kept it while a task being replaced mounted it): the next depl buildinst, depl tls renew or depl node-up removes it and deletes the credential in Keystone`]);
    expect(holder.secrets.size).toBe(2);
    expect(mine('linger').map((c) => c.id)).toContain(first!.id);
    // what status says, from the swarm alone
    expect(pendingCredentialRetirements(await holder.held())).toEqual(rotation.pending);
    // the next buildinst, days later with the new one far from its end, signs in only for this and finishes it
    holder.lingering.clear();
    const next = await keepRenewerCredential(buildinstRun(holder, signIn, start + 312 * DAY, [], 'linger'));
    expect(next.plan.action).toBe('reuse');
    expect(next.plan.steps.map((s) => s.kind)).toEqual(['mount-credential', 'retire-secret', 'delete-credential']);
    expect(next.pending).toEqual([]);
    expect([...holder.secrets.keys()]).toEqual([rotation.ref!.name]);
    expect(mine('linger').map((c) => c.id)).toEqual([holder.only().auth.id]);
    expect(pendingCredentialRetirements(await holder.held())).toEqual([]);
    // and the one after asks Keystone nothing
    const asked = emulator.requests.length;
    expect((await keepRenewerCredential(buildinstRun(holder, signIn, start + 313 * DAY, [], 'linger'))).plan.steps).toEqual([]);
    expect(emulator.requests.length).toBe(asked);
    await deleteRenewerCredentials({ app: 'linger', designate, log });
  });

  it('a dry run plans with Keystone\'s list and changes nothing', async () => {
    const holder = new MemoryHolder();
    const start = Date.now();
    await holdRenewerCredential(scope('dry', start), await prepareRenewerCredential(scope('dry', start)), holder);
    const before = [mine('dry').map((c) => c.id), [...holder.secrets.keys()]];
    const posts = credentialPosts();
    const run = { ...buildinstRun(holder, async () => ({ designate, zone, domain: 'dry.myproject.cloud.edu.au' }), start + 320 * DAY, [], 'dry'), command: 'depl tls renew' };
    const dry = await keepRenewerCredential({ ...run, mount: { ...run.mount!, how: 'reinstall' } }, { dryRun: true });
    expect(dry.plan.action).toBe('rotate');
    expect(dry.plan.steps.map((s) => s.describe)).toEqual([
      expect.stringMatching(/^make the application credential depl-dry-tls-renewer-dns01-<now>/),
      'install the renewal task again with the new secret (its settings and image as the swarm has them), when one is installed',
      expect.stringMatching(/^remove the swarm secret \S+, which holds the credential/),
      expect.stringMatching(/^delete the replaced application credential depl-dry-tls-renewer-dns01-\S+ \(expires in 45 days .*\) once its swarm secret is removed$/),
    ]);
    expect([mine('dry').map((c) => c.id), [...holder.secrets.keys()]]).toEqual(before);
    expect(credentialPosts()).toBe(posts);
    await deleteRenewerCredentials({ app: 'dry', designate, log });
  });

  it('buildinst that cannot sign in leaves the task its credential and says exactly what to run', async () => {
    const holder = new MemoryHolder();
    const start = Date.now();
    await holdRenewerCredential(scope('nologin', start), await prepareRenewerCredential(scope('nologin', start)), holder);
    const secret = [...holder.secrets.keys()][0]!;
    // a clouds.yaml entry without its password, and buildinst never prompts
    await writeFile(path.join(dir, 'clouds.yaml'), stringify({ clouds: { nopw: { auth: { auth_url: emulator.authUrl, username: 'demo', user_domain_name: 'Default', project_id: emulator.projectId } } } }));
    const signIn = async () => ({ designate: await designateFor({ root: dir, cloud: 'nopw' }, { interactive: false, env: {} }), zone, domain: 'nologin.myproject.cloud.edu.au' });
    lines.length = 0;
    const outcome = await keepRenewerCredential(buildinstRun(holder, signIn, start + 340 * DAY, [], 'nologin'));
    expect(outcome).toMatchObject({ ref: { name: secret }, mounted: false, plan: { action: 'blocked', steps: [] } });
    expect(lines.filter((l) => l.startsWith('WARN'))).toEqual([
      expect.stringMatching(/^WARN the renewal task's DNS credential expires at \S+ \(in 25 days\); the next depl buildinst, depl tls renew or depl node-up replaces it with your cloud login: run one before then \(depl buildinst could not sign in to replace it: .*password/),
    ]);
    expect(mine('nologin')).toHaveLength(1);
  });

  it('a credential made by a run that failed before the swarm held it is deleted by the next run, not piled up', async () => {
    await prepareRenewerCredential(scope('orphan'));
    expect(mine('orphan')).toHaveLength(1);
    const holder = new MemoryHolder();
    await holdRenewerCredential(scope('orphan'), await prepareRenewerCredential(scope('orphan')), holder);
    expect(mine('orphan')).toHaveLength(1);
    expect(holder.only().auth.id).toBe(mine('orphan')[0]!.id);
  });

  it('node-down deletes every one it made, and none of the operator\'s own', async () => {
    await holdRenewerCredential(scope('gone'), await prepareRenewerCredential(scope('gone')), new MemoryHolder());
    const others = emulator.applicationCredentials().filter((c) => !c.name?.startsWith('depl-gone-')).length;
    expect(await deleteRenewerCredentials({ app: 'gone', designate, log })).toEqual([expect.stringMatching(/^depl-gone-tls-renewer-dns01-/)]);
    expect(mine('gone')).toEqual([]);
    expect(emulator.applicationCredentials()).toHaveLength(others);
  });

  it('a cloud whose policy refuses application credentials: exit 2 naming what to do, nothing made', async () => {
    emulator.behaviour.applicationCredentials = 'forbidden';
    try {
      const error = await prepareRenewerCredential(scope('refused')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UserError);
      expect(error).toMatchObject({ code: 'APP_CREDENTIAL_REFUSED', exitCode: 2, hint: expect.stringContaining('tls.dnsCloud') });
      expect((error as Error).message).toContain('identity:create_application_credential');
      expect(mine('refused')).toEqual([]);
    } finally {
      emulator.behaviour.applicationCredentials = undefined;
    }
  });

  it('a node-up that signs in with a restricted application credential: Keystone lets none make another, and depl says to use the password', async () => {
    const holder = new MemoryHolder();
    await holdRenewerCredential(scope('login'), await prepareRenewerCredential(scope('login')), holder);
    const { KeystoneSession: Session } = await import('../../../src/apply/openstack/keystone.js');
    const { DesignateClient: Client } = await import('../../../src/apply/openstack/designate.js');
    const signedIn = new Client(new Session({ authUrl: emulator.authUrl, interface: 'public', auth: holder.only().auth, source: 'test' }));
    const error = await prepareRenewerCredential({ ...scope('login2'), designate: signedIn }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'APP_CREDENTIAL_REFUSED', exitCode: 2, hint: expect.stringContaining('sign in with your password for node-up') });
    expect((error as Error).message).toContain("Using method 'application_credential' is not allowed for managing additional application credentials");
  });

  it('a Designate that refuses tokens with access rules: exit 2, and the credential it could not use is deleted', async () => {
    emulator.behaviour.dnsServiceType = null;
    try {
      const error = await prepareRenewerCredential(scope('norules')).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'DNS_ACCESS_RULES_REFUSED', exitCode: 2, hint: expect.stringContaining('service_type = dns') });
      expect(mine('norules')).toEqual([]);
    } finally {
      emulator.behaviour.dnsServiceType = undefined;
    }
  });

  it('a Keystone older than access rules: the credential is made with the member role and an expiry, and node-up says it is broader', async () => {
    emulator.behaviour.applicationCredentials = 'no-access-rules';
    lines.length = 0;
    try {
      const holder = new MemoryHolder();
      await holdRenewerCredential(scope('old'), await prepareRenewerCredential(scope('old')), holder);
      expect(mine('old')[0]).toMatchObject({ roles: ['member'] });
      expect(mine('old')[0]!.accessRules).toBeUndefined();
      expect(lines.find((l) => l.startsWith('WARN'))).toMatch(/keeps no access rules .* can do what the member role can in the project/);
    } finally {
      emulator.behaviour.applicationCredentials = undefined;
    }
  });
});

describe('node-up with a cloud that refuses the renewal task\'s credential', () => {
  it('stops before the stack with exit 2, nothing created', async () => {
    const emulator = await startOpenStackEmulator({ servers: { createServer: async () => ({ address: '10.8.1.1' }), deleteServer: async () => {} }, projectName: 'myproject', behaviour: { applicationCredentials: 'forbidden' }, keypairs: { mine: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxQdR7JZqJ3L3cUeGq5rWm6F3VfQeZQ1Xo8kq0v4J2a mine' } });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-renewer-refused-'));
    try {
      emulator.designate.addZone('myproject.cloud.edu.au.');
      await writeFile(path.join(dir, 'clouds.yaml'), stringify({ clouds: { emu: { auth: { auth_url: emulator.authUrl, username: 'demo', password: 'demo-password', user_domain_name: 'Default', project_id: emulator.projectId }, region_name: emulator.region } } }));
      const file = path.join(dir, 'depl.yaml');
      await writeFile(file, stringify({ app: 'nope', domain: 'nope.myproject.cloud.edu.au', provider: { type: 'openstack', cloud: 'emu', nodes: 1, parameters: { key_name: 'mine' }, dns: { zone: 'myproject.cloud.edu.au.' } }, services: { web: { image: 'web', port: 80, http: true } } }));
      const error = await nodeUp(nodeInputsFor(await loadConfig(file)), { debug() {}, info() {}, warn() {}, error() {}, step() {} }, { interactive: false }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'APP_CREDENTIAL_REFUSED', exitCode: 2 });
      expect(emulator.stacks()).toEqual([]);
      expect(emulator.keypairs()).toEqual(['mine']);
      expect(emulator.designate.records('nope.myproject.cloud.edu.au.', 'A')).toEqual([]);
      expect(emulator.applicationCredentials()).toEqual([]);
    } finally {
      await emulator.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
