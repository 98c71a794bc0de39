import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireLock, forceReleaseLock } from '../../../src/apply/lock.js';
import { listCertificates, readEdgeTlsRender } from '../../../src/apply/tls/store.js';
import type { TlsConfig } from '../../../src/config/schema.js';
import { isDeplError } from '../../../src/errors.js';
import type { ClusterPort } from '../../../src/workflows/cluster-port.js';
import { renewTls, type TlsRenewSettings } from '../../../src/workflows/tls/renew.js';
import { Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

const DAY = 86_400_000;
const tls: TlsConfig = { mode: 'acme', directory: 'letsencrypt', challenge: 'http-01' };
const settings: TlsRenewSettings = { tls, renewBeforeMs: 30 * DAY };

let fake: FakeCluster | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

/**
 * A cluster as `depl tls renew` finds it: versions v1 and v2 at their hosts (only v1 with `versions: ['v1']`),
 * the domain's certificate due (10 days left), none yet for the versions, and one for v0, a version no longer installed.
 */
async function clusterWithDueCertificates(versions = ['v1', 'v2']): Promise<FakeCluster> {
  const cluster = await startFakeCluster({ versions });
  const issuer = await cluster.control.tls!.issuerFor(cluster.tlsStore);
  cluster.certificateDays = 10;
  await issuer.issue({ id: cluster.domain, names: [cluster.domain] });
  await issuer.issue({ id: `v0.${cluster.domain}`, names: [`v0.${cluster.domain}`] });
  cluster.certificateDays = 90;
  cluster.issuedIds.length = 0;
  return cluster;
}

const kinds = (steps: ReadonlyArray<{ kind: string; describe: string }>) => steps.map((s) => s.describe);

describe('depl tls renew on the fake cluster', () => {
  it('the dry run is the plan the run then applies, and changes nothing', { timeout: 60_000 }, async () => {
    fake = await clusterWithDueCertificates();
    const before = await listCertificates(fake.tlsStore);
    const dry = await renewTls(fake.control, settings, { dryRun: true });
    expect(await listCertificates(fake.tlsStore)).toEqual(before);
    expect(fake.issuedIds).toEqual([]);
    const run = await renewTls(fake.freshControl(), settings);
    expect(run.plan).toEqual(dry.plan);
    expect(kinds(run.plan.steps)).toEqual([
      'issue a certificate for v1.shop.test (the store has none that covers it)',
      'issue a certificate for v2.shop.test (the store has none that covers it)',
      'renew the certificate for shop.test (9 days left, less than 30 days)',
      'remove the certificate v0.shop.test (no routed version\'s host needs it)',
      'give the edge the certificates valid then and reload it gracefully (the routing stays)',
    ]);
    expect(fake.issuedIds).toEqual(['v1.shop.test', 'v2.shop.test', 'shop.test']);
  });

  it('killed after each step, the next run does exactly what is left and the edge ends up serving every certificate', async () => {
    const first = await (async () => {
      fake = await clusterWithDueCertificates(['v1']);
      const plan = (await renewTls(fake.control, settings, { dryRun: true })).plan;
      await fake.close();
      fake = undefined;
      return plan;
    })();
    for (let killedAfter = 1; killedAfter <= first.steps.length; killedAfter++) {
      fake = await clusterWithDueCertificates(['v1']);
      const killing = renewTls(fake.control, settings, { afterStep: (index) => { if (index === killedAfter - 1) throw new Killed(`after step ${killedAfter}`); } });
      await expect(killing).rejects.toBeInstanceOf(Killed);

      const next = await renewTls(fake.freshControl(), settings);
      expect(kinds(next.plan.steps), `killed after step ${killedAfter}`).toEqual(kinds(first.steps.slice(killedAfter)));
      expect(next.failed).toEqual([]);

      const installed = await listCertificates(fake.tlsStore);
      expect(installed.map((c) => c.id)).toEqual(['shop.test', 'v1.shop.test']);
      expect(installed.every((c) => c.notAfter - Date.now() > 80 * DAY)).toBe(true);
      const render = await readEdgeTlsRender(fake.tlsStore.remote, fake.tlsStore.edgeDir);
      expect(render?.certificates.map((c) => c.id)).toEqual(['shop.test', 'v1.shop.test']);
      const conf = await readFile(`${fake.dir}/edge/nginx.conf`, 'utf8');
      for (const host of ['shop.test', 'v1.shop.test']) expect(conf, `killed after step ${killedAfter}`).toContain(`server_name ${host};`);
      // and a third run finds nothing to do
      if (killedAfter === first.steps.length) expect((await renewTls(fake.freshControl(), settings)).plan.steps).toEqual([]);
      await fake.close();
      fake = undefined;
    }
  }, 120_000);

  it('a certificate the CA refuses does not stop the others; the run reports it', { timeout: 60_000 }, async () => {
    fake = await clusterWithDueCertificates();
    fake.refuseIssue.add('v2.shop.test');
    const result = await renewTls(fake.control, settings);
    expect(result.failed).toEqual([{ id: 'v2.shop.test', names: ['v2.shop.test'], reason: 'the fake CA refuses v2.shop.test' }]);
    expect((await listCertificates(fake.tlsStore)).map((c) => c.id)).toEqual(['shop.test', 'v1.shop.test']);
    // the next run, with the CA willing, issues only what is still missing
    fake.refuseIssue.clear();
    expect(kinds((await renewTls(fake.freshControl(), settings)).plan.steps)).toEqual([
      'issue a certificate for v2.shop.test (the store has none that covers it)',
      'give the edge the certificates valid then and reload it gracefully (the routing stays)',
    ]);
  });

  it('a run that lost the lock while its CA answered installs nothing over the new holder\'s store (fencing token)', { timeout: 60_000 }, async () => {
    fake = await clusterWithDueCertificates();
    const control = fake.control;
    const root = control.stateRoot!;
    const realIssuer = control.tls!.issuerFor;
    let newHolder: Awaited<ReturnType<typeof acquireLock>> | undefined;
    // while the order is out, the lease is broken and another run takes the lock (as after an expired lease)
    const slowCa: ClusterPort = {
      ...control,
      tls: {
        ...control.tls!,
        issuerFor: async (store) => {
          const issuer = await realIssuer(store);
          return {
            async issue(spec) {
              if (newHolder === undefined) {
                await forceReleaseLock(control.stateRemote, control.app, root);
                newHolder = await acquireLock(control.stateRemote, control.app, { command: 'depl switch v2', root });
              }
              await issuer.issue(spec);
            },
          };
        },
      },
    };
    const error = await renewTls(slowCa, settings).catch((e: unknown) => e);
    expect(isDeplError(error) && error.code).toBe('LOCK_LOST');
    expect((error as Error).message).toMatch(/this run no longer holds the cluster lock/);
    // nothing of the stale run reached the store: v1 was not installed, the domain's is still the old one
    const installed = await listCertificates(fake.tlsStore);
    expect(installed.map((c) => c.id)).toEqual(['shop.test', 'v0.shop.test']);
    expect(installed[0]!.notAfter - Date.now()).toBeLessThan(11 * DAY);
    await newHolder?.release();
  });
});
