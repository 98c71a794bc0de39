import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesignateClient, Zone } from '../../../src/apply/openstack/designate.js';
import type { TlsConfig } from '../../../src/config/schema.js';
import { pendingCredentialRetirements } from '../../../src/plan/tls/renewer-credential.js';
import { renewerServiceName, type RenewerSettings } from '../../../src/plan/tls/renewal.js';
import { silentLogger } from '../../../src/util/log.js';
import { designateCloud } from '../../../src/workflows/adapter-slices.js';
import type { ClusterPort } from '../../../src/workflows/cluster-port.js';
import { designateFor } from '../../../src/workflows/domain.js';
import { renewTls, type TlsRenewSettings } from '../../../src/workflows/tls/renew.js';
import { holdRenewerCredential, prepareRenewerCredential } from '../../../src/workflows/tls/renewer-credential.js';
import { startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';
import { FakeCredentialSecrets } from '../../support/fake-renewer-credentials.js';
import { passwordLoginEnv, startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

const DAY = 86_400_000;
const tls: TlsConfig = { mode: 'acme', directory: 'letsencrypt', challenge: 'dns-01' };
const settings: TlsRenewSettings = { tls, renewBeforeMs: 30 * DAY };

/**
 * `depl tls renew` keeps the renewal task's node-up DNS credential current as buildinst does (one plan): on the fake
 * cluster (its swarm's secrets and the task's spec) against the emulator's Keystone and Designate.
 */
describe('depl tls renew and the renewal task\'s DNS credential', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  let designate: DesignateClient;
  let zone: Zone;
  let fake: FakeCluster;
  let secrets: FakeCredentialSecrets;
  let signIns = 0;

  const mine = () => emulator.applicationCredentials().filter((c) => c.name?.startsWith(`depl-${fake.app}-`));
  const port = (): ClusterPort => {
    const control = fake.freshControl();
    const signIn = async () => {
      signIns += 1;
      return { designate, zone, domain: `${fake.app}.myproject.cloud.edu.au` };
    };
    return { ...control, tls: { ...control.tls!, renewerCredential: { holder: secrets, signIn } } };
  };
  const taskSecret = () => ((fake.swarm.specs.get(renewerServiceName(fake.app)) as { TaskTemplate: { ContainerSpec: { Secrets?: Array<{ SecretName: string }> } } })
    .TaskTemplate.ContainerSpec.Secrets ?? []).map((s) => s.SecretName);

  beforeAll(async () => {
    emulator = await startOpenStackEmulator({ servers: { createServer: async () => ({ address: '10.8.0.1' }), deleteServer: async () => {} }, projectName: 'myproject', dnsPublishDelayMs: 20 });
    emulator.designate.addZone('myproject.cloud.edu.au.');
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-renew-credential-'));
    designate = await designateFor(designateCloud({ config: { provider: { type: 'openstack' } }, file: path.join(dir, 'depl.yaml'), root: dir } as never), { env: passwordLoginEnv(emulator), cwd: dir, interactive: false });
    zone = (await designate.zoneNamed('myproject.cloud.edu.au.'))!;
    fake = await startFakeCluster({ versions: ['v1'] });
    secrets = new FakeCredentialSecrets(fake.swarm);
    // node-up made the credential 310 days ago (55 days left), and buildinst installed the task with it
    const made = Date.now() - 310 * DAY;
    const scope = { app: fake.app, domain: `${fake.app}.myproject.cloud.edu.au`, designate, zone, now: () => made, log: silentLogger };
    await holdRenewerCredential(scope, await prepareRenewerCredential(scope), secrets);
    const [held] = await secrets.held();
    const task: RenewerSettings = { app: fake.app, domain: fake.domain, directory: 'https://acme.example/directory', challenge: 'dns-01', renewBeforeMs: 30 * DAY, everyMs: 3_600_000, edgeUrl: 'http://10.0.0.1:80' };
    await fake.control.upgrades!.renewer({ settings: task, image: 'node-image:1', dnsSecret: held!.ref });
  }, 60_000);
  afterAll(async () => {
    await fake?.close();
    await emulator?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('rotates one close to its end: the dry run shows the plan and changes nothing; the run gives the task the new secret; a secret swarm keeps is finished by the next run', { timeout: 60_000 }, async () => {
    const [first] = mine();
    const firstSecret = taskSecret()[0]!;

    const dry = await renewTls(port(), settings, { dryRun: true });
    expect(dry.credential?.plan.action).toBe('rotate');
    expect(dry.credential?.plan.command).toBe('depl tls renew');
    expect(dry.credential?.plan.steps.map((s) => s.kind)).toEqual(['create-credential', 'mount-credential', 'retire-secret', 'delete-credential']);
    expect(mine().map((c) => c.id)).toEqual([first!.id]);
    expect(taskSecret()).toEqual([firstSecret]);

    // the task's old container is still stopping when the old secret is removed: swarm keeps it
    secrets.lingering.add(firstSecret);
    const run = await renewTls(port(), settings);
    // the plan the dry run showed (its new credential's expiry is a second or two later)
    const shape = (plan: typeof dry.credential) => ({ ...plan!.plan, steps: plan!.plan.steps.map((s) => s.describe.replace(/\(\d{4}-[^)]*\)/g, '(date)')) });
    expect(shape(run.credential)).toEqual(shape(dry.credential));
    const [current] = taskSecret();
    expect(current).not.toBe(firstSecret);
    expect(fake.swarm.calls).toContain(`install-renewal-task ${renewerServiceName(fake.app)}`);
    expect(run.credential?.pending).toEqual([expect.stringContaining(`the swarm secret ${firstSecret} of the replaced DNS credential ${first!.id} is still there`)]);
    expect(mine().map((c) => c.id)).toEqual([first!.id, expect.any(String)]);
    // status says it, from the swarm alone
    expect(pendingCredentialRetirements(await secrets.held())).toEqual(run.credential?.pending);

    // the old task is gone: the next tls renew removes the secret and deletes the credential
    secrets.lingering.clear();
    const next = await renewTls(port(), settings);
    expect(next.credential?.plan.action).toBe('reuse');
    expect(next.credential?.plan.steps.map((s) => s.kind)).toEqual(['mount-credential', 'retire-secret', 'delete-credential']);
    expect(next.credential?.pending).toEqual([]);
    expect((await secrets.held()).map((h) => h.secret)).toEqual([current]);
    expect(taskSecret()).toEqual([current]);
    expect(mine()).toHaveLength(1);
    expect(mine()[0]!.id).not.toBe(first!.id);

    // nothing due, nothing pending: no sign-in, nothing asked of Keystone
    const [asked, before] = [emulator.requests.length, signIns];
    const quiet = await renewTls(port(), settings);
    expect(quiet.credential?.plan).toMatchObject({ action: 'reuse', steps: [] });
    expect([emulator.requests.length, signIns]).toEqual([asked, before]);
  });
});
