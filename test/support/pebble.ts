import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import { createLogger } from '../../src/util/log.js';
import type { DesignateBackend } from './openstack-emulator/designate.js';
import { freePort } from './redis.js';

/**
 * Debian's Pebble (the ACME test server) and pebble-challtestsrv (its DNS) for one test file, on free
 * loopback ports, started and stopped by pid. Pebble's own HTTPS listener needs a certificate the
 * package does not ship: a throwaway CA signs one for 127.0.0.1/localhost (`listenerCa`, what the ACME
 * client trusts). Certificates Pebble issues chain to `roots`, new at every start.
 */
export interface TestPebble {
  /** https://127.0.0.1:<port>/dir */
  directory: string;
  /** PEM of the CA behind Pebble's HTTPS listener: tls.caBundle. */
  listenerCa: string;
  listenerCaFile: string;
  /** PEM of the root Pebble signs issued certificates with (fetched after start). */
  roots: string;
  rootsFile: string;
  /** pebble-challtestsrv's management API: /set-txt, /clear-txt, /add-a, /clear-a. */
  challtestsrv: string;
  /** pebble-challtestsrv's DNS server (`127.0.0.1:<port>`, UDP): what Pebble resolves through, for a Resolver. */
  dnsServer: string;
  /** Point a host name at an address in the DNS Pebble validates through (default: 127.0.0.1). */
  addA(host: string, address: string): Promise<void>;
  /** Forget the addresses given to a host name (add-a adds to them). */
  clearA(host: string): Promise<void>;
  setTxt(host: string, value: string): Promise<void>;
  clearTxt(host: string): Promise<void>;
  dir: string;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** The port Pebble dials for HTTP-01 (the edge's port 80 in a cluster). */
  httpPort?: number;
  /** Lifetime of issued certificates in seconds (short ones make renewal testable). */
  validitySeconds?: number;
  /** Names Pebble refuses to issue for (rejectedIdentifier). */
  blocklist?: string[];
  /**
   * The address Pebble's ACME and management APIs listen on (default 127.0.0.1): a Docker bridge's gateway
   * when an ACME client runs on the nodes (the renewal task), which reach this machine there.
   */
  listenHost?: string;
}

export async function startPebble(options: PebbleOptions = {}): Promise<TestPebble> {
  const found = await execa('sh', ['-c', 'command -v pebble && command -v pebble-challtestsrv'], { reject: false });
  if (found.exitCode !== 0) await ensureDebianPackages(['pebble'], createLogger());
  const dir = await mkdtemp(path.join(tmpdir(), 'depl-pebble-'));
  const ca = await makeCa(dir, 'depl test pebble listener CA');
  const host = options.listenHost ?? '127.0.0.1';
  const listener = await issueFromCa(dir, ca, 'listener', ['localhost'], [...new Set(['127.0.0.1', host])]);

  const [acmePort, managementPort, tlsPort, dnsPort, challManagement, challHttp] = await uniquePorts(6);
  const config = {
    pebble: {
      listenAddress: `${host}:${acmePort}`,
      managementListenAddress: `${host}:${managementPort}`,
      certificate: listener.certFile,
      privateKey: listener.keyFile,
      httpPort: options.httpPort ?? 5002,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
      domainBlocklist: options.blocklist ?? [],
      ...(options.validitySeconds ? { certificateValidityPeriod: options.validitySeconds } : {}),
    },
  };
  const configFile = path.join(dir, 'pebble.json');
  await writeFile(configFile, JSON.stringify(config));

  const children: ChildProcess[] = [];
  const stopAll = async () => {
    for (const child of children.reverse()) await terminate(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    children.push(spawnLogged('pebble-challtestsrv', [
      '-dns01', `127.0.0.1:${dnsPort}`, '-http01', `127.0.0.1:${challHttp}`, '-https01', '', '-tlsalpn01', '',
      '-management', `127.0.0.1:${challManagement}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
    ], path.join(dir, 'challtestsrv.log')));
    const challtestsrv = `http://127.0.0.1:${challManagement}`;
    await waitFor(async () => (await fetch(`${challtestsrv}/clear-txt`, { method: 'POST', body: JSON.stringify({ host: 'probe.invalid.' }) })).ok, 'pebble-challtestsrv');

    children.push(spawnLogged('pebble', ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`], path.join(dir, 'pebble.log'), {
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
      PEBBLE_AUTHZREUSE: '0',
    }));
    const roots = await waitFor(() => httpsGet(`https://${host}:${managementPort}/roots/0`, ca.cert), 'pebble');
    const rootsFile = path.join(dir, 'pebble-root.pem');
    await writeFile(rootsFile, roots);

    const post = async (endpoint: string, body: unknown) => {
      const response = await fetch(`${challtestsrv}${endpoint}`, { method: 'POST', body: JSON.stringify(body) });
      if (!response.ok) throw new Error(`challtestsrv ${endpoint}: HTTP ${response.status}`);
    };
    const fqdn = (host: string) => (host.endsWith('.') ? host : `${host}.`);
    return {
      directory: `https://${host}:${acmePort}/dir`,
      listenerCa: ca.cert,
      listenerCaFile: ca.certFile,
      roots,
      rootsFile,
      challtestsrv,
      dnsServer: `127.0.0.1:${dnsPort}`,
      addA: (host, address) => post('/add-a', { host: fqdn(host), addresses: [address] }),
      clearA: (host) => post('/clear-a', { host: fqdn(host) }),
      setTxt: (host, value) => post('/set-txt', { host: fqdn(host), value }),
      clearTxt: (host) => post('/clear-txt', { host: fqdn(host) }),
      dir,
      stop: stopAll,
    };
  } catch (error) {
    const logs = await Promise.all(['pebble.log', 'challtestsrv.log'].map((f) => readFile(path.join(dir, f), 'utf8').catch(() => '')));
    await stopAll();
    throw new Error(`${(error as Error).message}\n${logs.join('\n').slice(-2000)}`);
  }
}

/**
 * The name servers behind the emulator's Designate (its `dns` backend): each record set it publishes goes to
 * pebble-challtestsrv, the DNS Pebble validates DNS-01 through and tests resolve the A records with. Like a real
 * name server, a TXT value added to a name never leaves the name empty for a moment (two orders' challenges).
 */
export function designateOnPebble(pebble: Pick<TestPebble, 'setTxt' | 'clearTxt' | 'addA' | 'clearA'>): DesignateBackend {
  const published = new Map<string, string[]>();
  return {
    async publish(fqdn, type, records) {
      if (type === 'A') {
        await pebble.clearA(fqdn);
        for (const address of records) await pebble.addA(fqdn, address);
        return;
      }
      if (type !== 'TXT') return;
      const before = published.get(fqdn) ?? [];
      if (before.every((v) => records.includes(v))) {
        for (const value of records.filter((v) => !before.includes(v))) await pebble.setTxt(fqdn, value);
      } else {
        await pebble.clearTxt(fqdn);
        for (const value of records) await pebble.setTxt(fqdn, value);
      }
      published.set(fqdn, records);
    },
  };
}

export interface TestCa {
  cert: string;
  certFile: string;
  keyFile: string;
}

/** A throwaway certificate authority made with openssl (EC P-256). */
export async function makeCa(dir: string, name: string): Promise<TestCa> {
  const keyFile = path.join(dir, 'ca.key');
  const certFile = path.join(dir, 'ca.pem');
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { cert: await readFile(certFile, 'utf8'), certFile, keyFile };
}

/** A leaf certificate for these names signed by `ca`; returns the files (cert only, not the chain). */
export async function issueFromCa(dir: string, ca: TestCa, base: string, dnsNames: string[], ips: string[] = [], days = 2): Promise<{ certFile: string; keyFile: string }> {
  const keyFile = path.join(dir, `${base}.key`);
  const csrFile = path.join(dir, `${base}.csr`);
  const certFile = path.join(dir, `${base}.pem`);
  const extFile = path.join(dir, `${base}.ext`);
  const san = [...dnsNames.map((n) => `DNS:${n}`), ...ips.map((ip) => `IP:${ip}`)].join(',');
  await writeFile(extFile, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
  await execa('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${dnsNames[0] ?? ips[0]}`]);
  await execa('openssl', ['x509', '-req', '-in', csrFile, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-out', certFile, '-days', String(days), '-extfile', extFile]);
  return { certFile, keyFile };
}

/**
 * A self-signed certificate for `host` (or several names, the first its subject) valid only between two past or
 * future moments (`openssl ca`, since `openssl req -x509` cannot back-date): how an expired, not yet valid or
 * nearly expired certificate looks in the store.
 */
export async function certificateBetween(dir: string, host: string | readonly string[], notBefore: Date, notAfter: Date): Promise<{ chain: string; key: string }> {
  const names = typeof host === 'string' ? [host] : host;
  const work = await mkdtemp(path.join(dir, 'between-'));
  const asn1 = (d: Date) => d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
  await writeFile(path.join(work, 'ca.cnf'), [
    '[ca]', 'default_ca = self', '[self]', 'database = index.txt', 'new_certs_dir = .', 'serial = serial', 'default_md = sha256',
    'policy = any', 'copy_extensions = copy', 'unique_subject = no', '[any]', 'commonName = supplied', '',
  ].join('\n'));
  await writeFile(path.join(work, 'index.txt'), '');
  await writeFile(path.join(work, 'serial'), '01\n');
  await execa('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'req.csr', '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`], { cwd: work });
  await execa('openssl', ['ca', '-batch', '-config', 'ca.cnf', '-selfsign', '-keyfile', 'key.pem', '-in', 'req.csr', '-out', 'cert.pem', '-notext', '-startdate', asn1(notBefore), '-enddate', asn1(notAfter)], { cwd: work });
  return { chain: await readFile(path.join(work, 'cert.pem'), 'utf8'), key: await readFile(path.join(work, 'key.pem'), 'utf8') };
}

async function uniquePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function spawnLogged(command: string, args: string[], logFile: string, env: Record<string, string> = {}): ChildProcess {
  const child = spawn('sh', ['-c', 'exec "$0" "$@" >>"$LOGFILE" 2>&1', command, ...args], { stdio: 'ignore', env: { ...process.env, ...env, LOGFILE: logFile } });
  child.on('error', () => undefined);
  return child;
}

function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    }).on('error', reject);
  });
}

async function waitFor<T>(probe: () => Promise<T>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000}s: ${(last as Error | undefined)?.message ?? 'no answer'}`);
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
