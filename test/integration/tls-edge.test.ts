import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { readFile } from 'node:fs/promises';
import { managerEngine } from '../../src/apply/docker.js';
import { applyEdgeConfig } from '../../src/apply/edge/config.js';
import { ensureEdgeService } from '../../src/apply/edge/service.js';
import { clusterEdgeSite } from '../../src/apply/edge/site.js';
import { writeReleaseDocument } from '../../src/apply/release-store.js';
import type { CommandContext } from '../../src/cli/context.js';
import canaryCommand from '../../src/cli/commands/canary.js';
import statusCommand from '../../src/cli/commands/status.js';
import rollbackCommand from '../../src/cli/commands/rollback.js';
import switchCommand from '../../src/cli/commands/switch.js';
import tlsRenewCommand from '../../src/cli/commands/tls-renew.js';
import { emptyReleaseState, toDocument, type Routing as EdgeState } from '../../src/plan/release-state.js';
import { silentLogger } from '../../src/util/log.js';
import { issueEdgeCertificates } from '../../src/workflows/tls/certificates.js';
import { syncEdgeCertificates } from '../../src/workflows/tls/edge-sync.js';
import { installCertificate, tlsStoreFor } from '../../src/apply/tls/store.js';
import { startBusyboxVersion } from '../support/busybox-image.js';
import type { TestCluster } from '../support/cluster.js';
import { startClusterWithImages, testImages } from '../support/image-cluster.js';
import { runLoad } from '../support/load.js';
import { certificateBetween, startPebble, type TestPebble } from '../support/pebble.js';

/**
 * HTTPS at the edge of a real local swarm, with certificates from Pebble over HTTP-01: Pebble resolves
 * every host to the edge node (pebble-challtestsrv) and fetches the challenge from its port 80, where
 * nginx serves it from the manager's challenge directory. Pebble's certificates live one hour, so every
 * edge-touching command renews them all: the switch and canary below are renewals too.
 */
const images = testImages();
const { suffix, busybox, nginx } = images;
const domain = `tls-${suffix}.test`;
let tc: TestCluster;
let pebble: TestPebble;
let app: string;
let address: string;
const results: unknown[] = [];
let ctx: CommandContext;

async function startVersion(version: string): Promise<void> {
  await startBusyboxVersion(tc.cluster.manager, { app, version, network: tc.cluster.network, image: busybox });
}

async function waitRunning(service: string): Promise<void> {
  for (let i = 0; i < 240; i++) {
    const ps = await tc.cluster.manager.exec(['docker', 'service', 'ps', service, '--filter', 'desired-state=running', '--format', '{{.CurrentState}}']);
    if (ps.stdout.split('\n').some((l) => l.startsWith('Running'))) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${service} did not start`);
}

/** curl as an operator would run it: the name resolved to the edge node, Pebble's root trusted. */
async function curl(url: string): Promise<{ code: number; status: string; headers: string; body: string }> {
  const host = new URL(url).hostname;
  const port = new URL(url).protocol === 'https:' ? 443 : 80;
  const run = await execa('curl', ['-sS', '-i', '--max-time', '10', '--cacert', pebble.rootsFile, '--resolve', `${host}:${port}:${address}`, url], { reject: false });
  const [head = '', ...rest] = run.stdout.split(/\r?\n\r?\n/);
  return { code: run.exitCode ?? -1, status: head.split('\n')[0] ?? '', headers: head, body: rest.join('\n\n') + run.stderr };
}

const upstream = (version: string) => ({ label: version, upstream: { service: `${app}-${version}-web`, port: 8080 } });

beforeAll(async () => {
  // Pebble 2.4.0's domainBlocklist panics on any name with fewer labels than a blocked one (the apex here),
  // so the refusal comes from validation: refused.<domain> resolves to an address where nothing answers.
  pebble = await startPebble({ httpPort: 80, validitySeconds: 3600 });
  tc = await startClusterWithImages(images, ['busybox', 'nginx'], {
    nodes: 2,
    config: {
      domain,
      services: { web: { image: busybox, port: 8080, http: true, health: '/healthz' } },
      tls: { mode: 'acme', email: 'ops@example.org', directory: pebble.directory, caBundle: pebble.listenerCaFile, hstsMaxAge: 600 },
    },
  });
  app = tc.loaded.config.app;
  address = tc.cluster.managerNode.address;
  for (const host of [domain, `v1.${domain}`, `v2.${domain}`]) await pebble.addA(host, address);
  await pebble.addA(`refused.${domain}`, '127.0.0.2');
  await Promise.all(['v1', 'v2', 'refused'].map(startVersion));
  await Promise.all(['v1', 'v2', 'refused'].map((v) => waitRunning(`${app}-${v}-web`)));
  ctx = { globals: { config: tc.configFile, json: true }, log: silentLogger, interactive: false, progress: false, result: (data) => results.push(data) };
});

afterAll(async () => {
  if (process.env.DEPL_TEST_KEEP_LOGS && pebble) await import('node:fs/promises').then((fs) => fs.copyFile(`${pebble.dir}/pebble.log`, process.env.DEPL_TEST_KEEP_LOGS!));
  await tc?.stop();
  await pebble?.stop();
});

describe('HTTPS at the edge with certificates from Pebble', () => {
  let issueMs = 0;

  it('issues certificates for the live domain and each version host; one Pebble refuses stays on HTTP, saying why', async () => {
    // what buildinst does: edge with 443, challenge route in place, versions routed, then certificates
    const engine = await managerEngine(tc.cluster);
    try {
      await ensureEdgeService(tc.cluster, engine, { app, image: nginx, https: true });
    } finally {
      await engine.close();
    }
    // v1 live, as a switch would have recorded it
    await writeReleaseDocument(tc.cluster.manager, toDocument({ ...emptyReleaseState(app), live: 'v1' }));
    const state: EdgeState = { app, domain, versions: ['v1', 'v2', 'refused'].map(upstream), live: 'v1' };
    await syncEdgeCertificates(tlsStoreFor(tc.cluster.manager, app), tc.loaded.config, ['v1', 'v2', 'refused']);
    await applyEdgeConfig(await clusterEdgeSite(tc.cluster, app), state);
    const started = performance.now();
    const certs = await issueEdgeCertificates(tc.cluster, tc.loaded, silentLogger, ['v1', 'v2', 'refused'], { pollMs: 200 });
    issueMs = performance.now() - started;
    expect(certs.renderChanged).toBe(true);
    await applyEdgeConfig(await clusterEdgeSite(tc.cluster, app), state);

    expect(certs.issued.sort(), certs.failed.map((f) => f.reason).join('\n')).toEqual([domain, `v1.${domain}`, `v2.${domain}`].sort());
    expect(certs.failed).toHaveLength(1);
    expect(certs.failed[0]!.names).toEqual([`refused.${domain}`]);
    expect(certs.failed[0]!.reason).toMatch(/did not issue a certificate for refused\./);
    expect(certs.failed[0]!.reason).toMatch(/connection refused|urn:ietf:params:acme:error:connection/i);
    process.stderr.write(`HTTP-01 issuance of 3 certificates (+1 refused) against Pebble through the edge: ${Math.round(issueMs)} ms\n`);
  });

  it('curl --cacert <pebble root> gets 200 over HTTPS for the live domain and a version host; HTTP redirects; the refused version answers over HTTP', async () => {
    const live = await curl(`https://${domain}/`);
    expect(live.status, live.body).toMatch(/^HTTP\/2 200/);
    expect(live.headers).toMatch(/x-depl-version: v1/i);
    expect(live.headers).toMatch(/strict-transport-security: max-age=600/i);
    const version = await curl(`https://v2.${domain}/`);
    expect(version.status, version.body).toMatch(/^HTTP\/2 200/);
    expect(version.body.trim()).toBe('v2');

    const redirect = await curl(`http://${domain}/some/page?x=1`);
    expect(redirect.status).toMatch(/^HTTP\/1.1 301/);
    expect(redirect.headers).toMatch(new RegExp(`location: https://${domain.replace(/\./g, '\\.')}/some/page\\?x=1`, 'i'));

    const refused = await curl(`http://refused.${domain}/`);
    expect(refused.status).toMatch(/^HTTP\/1.1 200/);
    expect(refused.body.trim()).toBe('refused');
    const noTls = await curl(`https://refused.${domain}/`);
    expect(noTls.code).not.toBe(0);

    // the challenge path is files on the manager, never a version's
    const challenge = await curl(`http://v1.${domain}/.well-known/acme-challenge/not-a-token-aaaaaaaaaaaa`);
    expect(challenge.status).toMatch(/^HTTP\/1.1 404/);
    expect(challenge.headers).not.toMatch(/x-depl-version/i);
  });

  it('keeps the keys 0600 on the manager and out of the edge service spec', async () => {
    const modes = await tc.cluster.manager.exec(['sh', '-c', `stat -c '%a %n' /var/lib/depl/${app}/edge/tls/*/privkey.pem`]);
    const lines = modes.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(/^600 /);
    const spec = (await tc.cluster.manager.exec(['docker', 'service', 'inspect', `${app}-edge`])).stdout;
    expect(spec).not.toContain('PRIVATE KEY');
    expect(JSON.parse(spec)[0].Spec.EndpointSpec.Ports.map((p: { PublishedPort: number }) => p.PublishedPort).sort()).toEqual([443, 80]);
  });

  it('switch, canary and a forced renewal under HTTPS load: 0 failed requests, and status shows the expiry', async () => {
    await statusCommand(ctx);
    const before = (results.pop() as { tls: { certificates: Array<{ id: string; notAfter: string }> } }).tls.certificates;
    let renewError: unknown;
    const result = await runLoad({
      url: `https://${address}:443`,
      host: domain,
      tls: { servername: domain, ca: pebble.roots },
      durationSeconds: 8,
      keepAlive: { connections: 4, rate: 80 },
      newConnections: { connections: 2, rate: 20 },
    }, async (load) => {
      await load.responses(50);
      // Pebble's one-hour certificates are due (under 30 days left): switch and canary leave them be (they never
      // wait on a CA); the forced renewal renews them
      await switchCommand(ctx, 'v2');
      const canaryDefaults = { interval: '1m', maxErrorRate: '1%', maxP95: '500ms' };
      await canaryCommand(ctx, 'v1', { ...canaryDefaults, weight: 30 });
      await canaryCommand(ctx, undefined, { ...canaryDefaults, promote: true });
      // forced: renews all, and still fails (exit 1) for the version whose validation is refused
      renewError = await tlsRenewCommand(ctx, { force: true }).then(() => null, (e: unknown) => e);
    });
    expect(result.failures).toEqual([]);
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(result.samples.length).toBeGreaterThan(200);
    expect(new Set(result.samples.map((s) => s.version))).toEqual(new Set(['v1', 'v2']));
    expect((renewError as { code?: string }).code).toBe('TLS_ISSUE_FAILED');
    expect((renewError as Error).message).toMatch(new RegExp(`^1 certificate could not be issued:\\n  refused\\.${domain.replace(/\./g, '\\.')}: `));

    await statusCommand(ctx);
    const status = results.pop() as { tls: { mode: string; certificates: Array<{ id: string; names: string[]; notAfter: string }> } };
    expect(status.tls.mode).toBe('acme');
    expect(status.tls.certificates.map((c) => c.names[0]).sort()).toEqual([domain, `v1.${domain}`, `v2.${domain}`].sort());
    for (const c of status.tls.certificates) {
      expect(Date.parse(c.notAfter)).toBeGreaterThan(Date.parse(before.find((b) => b.id === c.id)!.notAfter));
    }
    // what a client sees after the renewal: the new certificate, chained to Pebble's root
    expect((await curl(`https://v1.${domain}/`)).status).toMatch(/^HTTP\/2 200/);
  });

  it('an expired certificate leaves the edge: its host answers over plain HTTP with no redirect, status says so, a renewal brings HTTPS back; the canary cookie is Secure over HTTPS', async () => {
    const store = tlsStoreFor(tc.cluster.manager, app);
    // certificate times are whole seconds
    const expiredAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
    await installCertificate(store, `v2.${domain}`, await certificateBetween(pebble.dir, `v2.${domain}`, new Date(expiredAt.getTime() - 86_400_000), expiredAt));
    // any release change syncs the edge with the store, with no ACME order: here a switch
    await switchCommand(ctx, 'v2');
    const plain = await curl(`http://v2.${domain}/`);
    expect(plain.status, plain.body).toMatch(/^HTTP\/1.1 200/);
    expect(plain.body.trim()).toBe('v2');
    expect((await curl(`https://v2.${domain}/`)).code).not.toBe(0);
    expect((await curl(`https://${domain}/`)).status).toMatch(/^HTTP\/2 200/);
    await statusCommand(ctx);
    const status = results.pop() as { tls: { certificates: Array<{ id: string; served: boolean; withheld?: { reason: string; at: string } }> } };
    expect(status.tls.certificates.find((c) => c.id === `v2.${domain}`)).toMatchObject({ served: false, withheld: { reason: 'expired', at: expiredAt.toISOString() } });
    expect(status.tls.certificates.find((c) => c.id === domain)).toMatchObject({ served: true });

    // the canary's sticky cookie, set over HTTPS, is Secure (a browser never sends it over plain http)
    const canaryDefaults = { interval: '1m', maxErrorRate: '1%', maxP95: '500ms' };
    await canaryCommand(ctx, 'v1', { ...canaryDefaults, weight: 50 });
    const secure = await curl(`https://${domain}/`);
    expect(secure.headers).toMatch(/set-cookie: depl_client=[0-9a-f]{16}; Path=\/; Max-Age=2592000; HttpOnly; SameSite=Lax; Secure\r?$/im);
    await canaryCommand(ctx, undefined, { ...canaryDefaults, abort: true });

    // depl tls renew renews the expired one (the refused version still fails, exit 1) and reloads the edge
    const renewError = await tlsRenewCommand(ctx, {}).then(() => null, (e: unknown) => e);
    expect((renewError as { code?: string }).code).toBe('TLS_ISSUE_FAILED');
    const back = await curl(`https://v2.${domain}/`);
    expect(back.status, back.body).toMatch(/^HTTP\/2 200/);
    expect((await curl(`http://v2.${domain}/`)).status).toMatch(/^HTTP\/1.1 301/);
  });

  it('an ACME failure on depl tls renew is a clear exit-1 error, and the edge keeps serving', async () => {
    const file = tc.configFile;
    const doc = parse(await readFile(file, 'utf8')) as { tls: Record<string, unknown> };
    await writeFile(file, stringify({ ...doc, tls: { ...doc.tls, directory: 'https://127.0.0.1:9/dir' } }));
    const error = await tlsRenewCommand(ctx, { force: true }).catch((e: unknown) => e as Error & { exitCode?: number; code?: string });
    await writeFile(file, stringify(doc));
    expect(error).toBeInstanceOf(Error);
    expect((error as { exitCode?: number }).exitCode).toBe(1);
    expect((error as Error).message).toMatch(/could not be issued[\s\S]*cannot be read: connect ECONNREFUSED/);
    expect((await curl(`https://${domain}/`)).status).toMatch(/^HTTP\/2 200/);
    // with the CA out of reach a switch and a rollback go through at once: they never ask it. Out of reach as in
    // an incident: it takes the connection and never answers (refused at once would cost a client nothing); and
    // Pebble's one-hour certificates are due, which a change that issued would renew first
    const connections: Socket[] = [];
    const silent = createServer((socket) => { connections.push(socket); });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    await writeFile(file, stringify({ ...doc, tls: { ...doc.tls, directory: `https://127.0.0.1:${(silent.address() as AddressInfo).port}/dir` } }));
    try {
      const started = performance.now();
      // a change that waited on the CA would wait as long as it does not answer: the test gives up at 30 s
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`the switch and rollback waited 30 s; ${connections.length} connection(s) to the CA`)), 30_000); });
      await Promise.race([(async () => { await switchCommand(ctx, 'v1'); await rollbackCommand(ctx); })(), gaveUp]).finally(() => clearTimeout(timer));
      expect(connections).toHaveLength(0);
      expect(performance.now() - started).toBeLessThan(30_000);
    } finally {
      await writeFile(file, stringify(doc));
      for (const socket of connections) socket.destroy();
      silent.close();
    }
    expect((await curl(`https://v2.${domain}/`)).status).toMatch(/^HTTP\/2 200/);
  });
});
