import { X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { LocalRemote } from '../../src/apply/local-remote.js';
import { installCertificate, readEdgeTlsRender, type TlsStore } from '../../src/apply/tls/store.js';
import { applyEdgeConfig } from '../../src/apply/edge/config.js';
import { describeWithheld } from '../../src/plan/tls/certificates.js';
import { loadConfig } from '../../src/config/load.js';
import { UserError } from '../../src/errors.js';
import { silentLogger } from '../../src/util/log.js';
import { ensureCertificates, readCertificateFiles } from '../../src/workflows/tls/certificates.js';
import { acmeIssuer } from '../../src/apply/tls/issuer.js';
import { designateResponderWith } from '../../src/apply/tls/responders.js';
import type { RenewerDnsCredential } from '../../src/plan/tls/renewal.js';
import { designateFor } from '../../src/workflows/domain.js';
import { syncEdgeCertificates } from '../../src/workflows/tls/edge-sync.js';
import { deleteRenewerCredentials, holdRenewerCredential, prepareRenewerCredential } from '../../src/workflows/tls/renewer-credential.js';
import { isolatedEnv } from '../support/openstack-emulator/client.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../support/openstack-emulator/index.js';
import { startLocalEdge, startVersionServer } from '../support/local-edge.js';
import { freePort } from '../support/redis.js';
import { certificateBetween, designateOnPebble, issueFromCa, makeCa, startPebble, type TestPebble } from '../support/pebble.js';

/**
 * Certificates without a cluster: the store is a folder on this machine (the same commands as on the
 * manager, through a LocalRemote). DNS-01 for a wildcard through the emulator's Designate, which publishes
 * to pebble-challtestsrv, the DNS Pebble validates against; and `tls: files` with a self-made CA.
 */
describe('tls: certificates from Pebble (DNS-01 through Designate) and from files', () => {
  let pebble: TestPebble;
  let emulator: OpenStackEmulator;
  let dir: string;
  let env: Record<string, string>;
  const domain = 'app-dns01.test';

  beforeAll(async () => {
    pebble = await startPebble();
    emulator = await startOpenStackEmulator({
      servers: { async createServer() { throw new Error('no servers here'); }, async deleteServer() {} },
      users: [{ name: 'alice', domain: 'Default', password: 'alice-pw' }],
      dns: designateOnPebble(pebble),
    });
    emulator.designate.addZone(`${domain}.`);
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-tls-acme-'));
    env = isolatedEnv(dir);
    await writeFile(path.join(dir, 'clouds.yaml'), stringify({
      clouds: { emu: { auth: { auth_url: emulator.authUrl, username: 'alice', password: 'alice-pw', project_name: emulator.projectName, user_domain_name: 'Default', project_domain_name: 'Default' }, region_name: emulator.region } },
    }));
  });

  afterAll(async () => {
    await emulator?.close();
    await pebble?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function project(name: string, tls: Record<string, unknown>) {
    const folder = path.join(dir, name);
    const file = path.join(folder, 'depl.yaml');
    await import('node:fs/promises').then((fs) => fs.mkdir(folder, { recursive: true }));
    await writeFile(file, stringify({ app: name, domain, services: { web: { image: 'web:1', port: 8080, http: true } }, tls }));
    const loaded = await loadConfig(file);
    const store: TlsStore = { remote: new LocalRemote(), accountDir: path.join(folder, 'state', 'tls'), edgeDir: path.join(folder, 'state', 'edge') };
    return { loaded, store, folder };
  }

  it('issues one wildcard certificate for <domain> and *.<domain> through Designate, keeps the key 0600, and takes the TXT records away', async () => {
    const { loaded, store } = await project('dns', { mode: 'acme', directory: pebble.directory, caBundle: pebble.listenerCaFile, challenge: 'dns-01', dnsCloud: 'emu', email: 'ops@example.org' });
    const started = performance.now();
    const outcome = await ensureCertificates({ project: loaded, store, log: silentLogger, openstack: { env, cwd: dir, interactive: false }, pollMs: 100 }, ['v1', 'v2']);
    const ms = performance.now() - started;
    expect(outcome.failed).toEqual([]);
    expect(outcome.issued).toEqual([`wildcard.${domain}`]);
    expect(outcome.installed.map((c) => [c.id, [...c.names].sort()])).toEqual([[`wildcard.${domain}`, [`*.${domain}`, domain]]]);

    const certDir = path.join(store.edgeDir, 'tls', `wildcard.${domain}`);
    const chain = await readFile(path.join(certDir, 'fullchain.pem'), 'utf8');
    expect(chainsTo(chain, pebble.roots)).toBe(true);
    expect((await stat(path.join(certDir, 'privkey.pem'))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(store.accountDir, 'account.json'))).mode & 0o777).toBe(0o600);

    await emulator.designate.settle();
    expect(emulator.designate.records(`_acme-challenge.${domain}.`, 'TXT')).toEqual([]);
    expect(emulator.requests.some((r) => r.method === 'POST' && r.path.includes('/recordsets'))).toBe(true);

    // a second run with nothing due changes nothing; a forced one renews with the same account
    const again = await ensureCertificates({ project: loaded, store, log: silentLogger, openstack: { env, cwd: dir, interactive: false }, pollMs: 100 }, ['v1', 'v2', 'v3']);
    expect(again.changed).toBe(false);
    const forced = await ensureCertificates({ project: loaded, store, log: silentLogger, openstack: { env, cwd: dir, interactive: false }, pollMs: 100 }, ['v1'], { force: true });
    expect(forced.failed).toEqual([]);
    expect(forced.renewed).toEqual([`wildcard.${domain}`]);
    expect(await readFile(path.join(certDir, 'fullchain.pem'), 'utf8')).not.toBe(chain);
    console.log(`DNS-01 wildcard issuance against Pebble + emulated Designate: ${Math.round(ms)} ms`);
  });

  it('the renewal task\'s DNS-01 path with the credential node-up made: the wildcard renewed through Designate with that credential alone', async () => {
    const designate = await designateFor({ root: dir, cloud: 'emu' }, { env, cwd: dir, interactive: false });
    const zone = (await designate.zoneNamed(`${domain}.`))!;
    const holder = { secrets: [] as string[], held: async () => [], store: async (d: { data: { reveal(): string } }) => { holder.secrets.push(d.data.reveal()); }, retire: async () => true };
    const scope = { app: 'task', domain, designate, zone, now: Date.now, log: silentLogger };
    await holdRenewerCredential(scope, await prepareRenewerCredential(scope), holder);
    // what the task reads from its swarm secret (src/tls-renewer/main.ts)
    const credential = JSON.parse(holder.secrets[0]!) as RenewerDnsCredential;
    const { store } = await project('task', { mode: 'acme', directory: pebble.directory });
    const from = emulator.requests.length;
    const issuer = acmeIssuer(store, { directory: pebble.directory, caBundle: pebble.listenerCa, pollMs: 100 }, () => designateResponderWith(credential), silentLogger);
    await issuer.issue({ id: `wildcard.${domain}`, names: [domain, `*.${domain}`] });
    const chain = await readFile(path.join(store.edgeDir, 'tls', `wildcard.${domain}`, 'fullchain.pem'), 'utf8');
    expect(chainsTo(chain, pebble.roots)).toBe(true);
    await emulator.designate.settle();
    expect(emulator.requests.slice(from).filter((r) => r.path.startsWith('/dns/')).map((r) => [r.method, r.credential ?? 'no credential', r.status < 300])).toEqual(
      expect.arrayContaining([['POST', credential.auth.id, true]]),
    );
    // every Designate call came with the task's credential, and only its zone's recordsets were asked for
    for (const r of emulator.requests.slice(from).filter((q) => q.path.startsWith('/dns/'))) {
      expect([r.credential, r.path.startsWith(`/dns/v2/zones/${zone.id}/recordsets`), r.status < 300]).toEqual([credential.auth.id, true, true]);
    }
    expect(emulator.designate.records(`_acme-challenge.${domain}.`, 'TXT')).toEqual([]);
    await deleteRenewerCredentials({ app: 'task', designate, log: silentLogger });
  });

  it('an ACME server that cannot be reached is a clear per-certificate failure, not a crash', async () => {
    const { loaded, store } = await project('unreachable', { mode: 'acme', directory: 'https://127.0.0.1:9/dir', challenge: 'http-01' });
    const outcome = await ensureCertificates({ project: loaded, store, log: silentLogger }, []);
    expect(outcome.failed).toHaveLength(1);
    expect(outcome.failed[0]!.reason).toBe("the ACME directory https://127.0.0.1:9/dir cannot be read: connect ECONNREFUSED 127.0.0.1:9");
    expect(outcome.installed).toEqual([]);
  });

  it('tls: files installs a certificate from a self-made CA; a key that does not match exits 2 and changes nothing', async () => {
    const ca = await makeCa(dir, 'depl test institution CA');
    const good = await issueFromCa(dir, ca, 'institution', [domain, `*.${domain}`]);
    const other = await issueFromCa(dir, ca, 'other', ['other.test']);
    const { loaded, store } = await project('files', { mode: 'files', cert: good.certFile, key: good.keyFile });
    const outcome = await ensureCertificates({ project: loaded, store, log: silentLogger }, ['v1']);
    expect(outcome.issued).toEqual(['files']);
    expect(outcome.installed[0]).toMatchObject({ id: 'files', names: [domain, `*.${domain}`] });
    const installed = await readFile(path.join(store.edgeDir, 'tls', 'files', 'fullchain.pem'), 'utf8');

    const { loaded: wrong } = await project('files', { mode: 'files', cert: good.certFile, key: other.keyFile });
    const error = await readCertificateFiles(wrong).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(2);
    expect((error as UserError).message).toBe(`the key ${other.keyFile} does not match the certificate ${good.certFile}`);
    await expect(ensureCertificates({ project: wrong, store, log: silentLogger }, ['v1'])).rejects.toThrow(/does not match/);
    expect(await readFile(path.join(store.edgeDir, 'tls', 'files', 'fullchain.pem'), 'utf8')).toBe(installed);

    const { loaded: elsewhere } = await project('files', { mode: 'files', cert: other.certFile, key: other.keyFile });
    await expect(readCertificateFiles(elsewhere)).rejects.toThrow(`does not cover ${domain} (it covers: other.test)`);
  });

  it('tls: files refuses an expired certificate and a key others may read, exit 2 naming the file and the fix, and installs neither', async () => {
    const ca = await makeCa(dir, 'depl test institution CA');
    const good = await issueFromCa(dir, ca, 'readable', [domain, `*.${domain}`]);
    const { loaded, store } = await project('files-refused', { mode: 'files', cert: good.certFile, key: good.keyFile });
    const installed = path.join(store.edgeDir, 'tls', 'files', 'fullchain.pem');
    const refusal = async (project: typeof loaded) => {
      const error = await readCertificateFiles(project).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UserError);
      expect((error as UserError).exitCode).toBe(2);
      await expect(ensureCertificates({ project, store, log: silentLogger }, ['v1'])).rejects.toBeInstanceOf(UserError);
      await expect(stat(installed)).rejects.toMatchObject({ code: 'ENOENT' });
      return error as UserError;
    };

    await chmod(good.keyFile, 0o644);
    const readable = await refusal(loaded);
    expect([readable.code, readable.message, readable.hint]).toEqual(['TLS_KEY_READABLE', `the private key ${good.keyFile} is readable by others (mode 644)`, `Run chmod 600 ${good.keyFile} (only its owner may read it).`]);
    await chmod(good.keyFile, 0o600);

    // real openssl's certificate for the domain that ran out an hour ago
    const expiredAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
    const old = await certificateBetween(dir, domain, new Date(expiredAt.getTime() - 86_400_000), expiredAt);
    const oldCert = path.join(dir, 'expired.pem');
    const oldKey = path.join(dir, 'expired.key');
    await writeFile(oldCert, old.chain);
    await writeFile(oldKey, old.key, { mode: 0o600 });
    const { loaded: expiredProject } = await project('files-refused', { mode: 'files', cert: oldCert, key: oldKey });
    const expired = await refusal(expiredProject);
    expect([expired.code, expired.message]).toEqual(['TLS_CERT_EXPIRED', `the certificate ${oldCert} expired ${expiredAt.toISOString()} (notAfter)`]);
    expect(expired.hint).toContain(`put it (and its key) in place of ${oldCert}`);
  });

  it('a certificate not valid yet is left out of a real nginx edge: its host is served over plain HTTP with no redirect, the valid one over HTTPS; tls: files refuses it', async () => {
    const app = `later${process.pid}`;
    const { loaded, store, folder } = await project(app, { mode: 'acme', directory: pebble.directory, email: 'ops@example.org' });
    // real openssl certificates (times are whole seconds): v1's valid now, v2's from tomorrow (a clock ahead, or an issuer's)
    const now = Math.floor(Date.now() / 1000) * 1000;
    const validFrom = new Date(now + 86_400_000);
    await installCertificate(store, `v1.${domain}`, await certificateBetween(dir, `v1.${domain}`, new Date(now - 3_600_000), new Date(now + 86_400_000)));
    const later = await certificateBetween(dir, `v2.${domain}`, validFrom, new Date(now + 2 * 86_400_000));
    await installCertificate(store, `v2.${domain}`, later);

    const sync = await syncEdgeCertificates(store, loaded.config, ['v1', 'v2']);
    expect(sync.withheld).toEqual([{ id: `v2.${domain}`, names: [`v2.${domain}`], reason: 'not-yet-valid', at: validFrom.getTime() }]);
    expect(sync.withheld.map(describeWithheld)).toEqual([`v2.${domain}: certificate not valid before ${validFrom.toISOString()}; not served: plain HTTP until then`]);

    // Debian's nginx on loopback renders what the sync wrote, as the edge reads it from the store
    const edge = await startLocalEdge(app);
    const servers = await Promise.all(['v1', 'v2'].map((v) => startVersionServer(app, v)));
    try {
      const https = (await readEdgeTlsRender(store.remote, store.edgeDir))!;
      const site = { ...edge.site, render: { ...edge.site.render, tls: { ...https, port: await freePort() } } };
      await applyEdgeConfig(site, { app, domain, versions: servers.map((s) => s.edgeVersion) });
      const curl = async (scheme: 'http' | 'https', host: string) => {
        const port = scheme === 'https' ? site.render.tls.port : edge.port;
        // -k: whether nginx offers a certificate at all is the question here, not whether curl trusts it
        const run = await execa('curl', ['-sS', '-i', '-k', '--max-time', '10', '--resolve', `${host}:${port}:127.0.0.1`, `${scheme}://${host}:${port}/`], { reject: false });
        return { code: run.exitCode, status: run.stdout.split('\n')[0] ?? '', out: run.stdout + run.stderr };
      };
      const plain = await curl('http', `v2.${domain}`);
      expect(plain.status, plain.out).toMatch(/^HTTP\/1.1 200/);
      expect(plain.out).toContain('"version":"v2"');
      // no server offers the certificate: the default https server refuses the name in the handshake
      expect((await curl('https', `v2.${domain}`)).code).not.toBe(0);
      // the valid one is served, and plain HTTP for its host redirects into it
      const secure = await curl('https', `v1.${domain}`);
      expect(secure.status, secure.out).toMatch(/^HTTP\/2 200/);
      expect((await curl('http', `v1.${domain}`)).status).toMatch(/^HTTP\/1.1 301/);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
      await edge.stop();
    }

    // tls: files refuses the same certificate before anything is installed
    const laterCert = path.join(folder, 'later.pem');
    const laterKey = path.join(folder, 'later.key');
    await writeFile(laterCert, later.chain);
    await writeFile(laterKey, later.key, { mode: 0o600 });
    const { loaded: filesProject } = await project(`${app}-files`, { mode: 'files', cert: laterCert, key: laterKey });
    const refused = await readCertificateFiles(filesProject).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UserError);
    expect([(refused as UserError).code, (refused as UserError).exitCode, (refused as UserError).message])
      .toEqual(['TLS_CERT_NOT_YET_VALID', 2, `the certificate ${laterCert} is not valid before ${validFrom.toISOString()} (notBefore)`]);
  });
});

/** The chain's leaf is issued by the next certificate, and the last one by `rootPem`. */
function chainsTo(chainPem: string, rootPem: string): boolean {
  const certs = (chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
  const root = new X509Certificate(rootPem);
  if (certs.length === 0) return false;
  for (let i = 0; i + 1 < certs.length; i++) if (!certs[i]!.verify(certs[i + 1]!.publicKey)) return false;
  return certs[certs.length - 1]!.verify(root.publicKey);
}
