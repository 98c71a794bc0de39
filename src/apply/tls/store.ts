import { X509Certificate } from 'node:crypto';
import { OperationError } from '../../errors.js';
import { quote } from '../../plan/shell.js';
import type { EdgeTlsRender } from '../../plan/tls/nginx.js';
import { certificatesServedAt, challengeFileName, subjectNames, type InstalledCertificate } from '../../plan/tls/certificates.js';
import type { Remote } from '../remote.js';
import { edgeDir } from '../../plan/edge-service.js';
import { ACME_ACCOUNT_FILE, tlsStateDir } from '../../plan/tls/renewal.js';

/**
 * Certificates and keys on the manager. Everything lives under the app's edge directory, which the edge
 * container bind-mounts, so nginx reads them where they are written and nothing secret goes through a
 * swarm config, a service spec or a log line:
 *
 *   <edge>/tls/<id>/fullchain.pem   certificate, then intermediates (0644)
 *   <edge>/tls/<id>/privkey.pem     its key (0600, root)
 *   <edge>/acme-challenge/<token>   HTTP-01 answers while an order is open
 *   <state>/tls/account.json        the ACME account key and URL (0600), outside what the edge mounts
 */
export interface TlsStore {
  remote: Remote;
  /** The edge directory (mounted into the edge container at the same path). */
  edgeDir: string;
  /** Where the ACME account is kept (`<state>/<app>/tls`, src/plan/tls/renewal.ts tlsStateDir). */
  accountDir: string;
}

export function tlsStoreFor(remote: Remote, app: string): TlsStore {
  return { remote, accountDir: tlsStateDir(app), edgeDir: edgeDir(app) };
}

export function certificatePaths(store: Pick<TlsStore, 'edgeDir'>, id: string): { dir: string; chain: string; key: string } {
  if (!/^[a-z0-9*][a-z0-9.-]*$/i.test(id) || id.includes('..')) throw new OperationError(`certificate id "${id}" is not a host name`, undefined, 'TLS_CERT_ID_INVALID');
  const dir = `${store.edgeDir}/tls/${id}`;
  return { dir, chain: `${dir}/fullchain.pem`, key: `${dir}/privkey.pem` };
}

export function challengeDir(store: Pick<TlsStore, 'edgeDir'>): string {
  return `${store.edgeDir}/acme-challenge`;
}

/** The certificates in the store, read from their chains (keys stay where they are). */
export async function listCertificates(store: TlsStore): Promise<InstalledCertificate[]> {
  const root = `${store.edgeDir}/tls`;
  // one round trip: every chain file, each preceded by a marker line with its folder name
  const listing = await store.remote.shell(
    `[ -d ${quote(root)} ] || exit 0; for d in ${quote(root)}/*/; do [ -f "$d/fullchain.pem" ] && [ -f "$d/privkey.pem" ] || continue; printf '@@depl-cert %s\\n' "$(basename "$d")"; cat "$d/fullchain.pem"; done`,
  );
  const certs: InstalledCertificate[] = [];
  for (const part of listing.stdout.split('@@depl-cert ').slice(1)) {
    const newline = part.indexOf('\n');
    const id = part.slice(0, newline).trim();
    const leaf = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(part.slice(newline + 1))?.[0];
    if (!leaf) continue;
    try {
      const cert = new X509Certificate(leaf);
      certs.push({ id, names: subjectNames(cert), notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo), issuer: cert.issuer.replace(/\n/g, ', '), serial: cert.serialNumber });
    } catch {
      // an unreadable chain counts as missing: the next issue replaces it
    }
  }
  return certs.sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * Installs a certificate and its key in one rename of their folder, so nginx (and a concurrent reader)
 * sees the old pair or the new pair, never a new chain with an old key. The key is created under umask
 * 077: it is never readable by anyone but root, not even for a moment. Every write is a `shell` line, so a
 * run holding the cluster lock writes through its fence (src/apply/fenced-remote.ts): a run that lost the
 * lease cannot put an older certificate over the one a newer holder installed.
 */
export async function installCertificate(store: TlsStore, id: string, pair: { chain: string; key: string }): Promise<void> {
  const paths = certificatePaths(store, id);
  const next = `${paths.dir}.next`;
  const old = `${paths.dir}.old`;
  await store.remote.shell(`set -e; umask 077; rm -rf ${quote(next)} ${quote(old)}; mkdir -p ${quote(next)}; cat > ${quote(next)}/privkey.pem; chmod 600 ${quote(next)}/privkey.pem`, { stdin: pair.key });
  await store.remote.shell(
    `set -e; umask 077; cat > ${quote(next)}/fullchain.pem; chmod 644 ${quote(next)}/fullchain.pem; chmod 711 ${quote(next)}; `
    + `if [ -d ${quote(paths.dir)} ]; then mv ${quote(paths.dir)} ${quote(old)}; fi; mv ${quote(next)} ${quote(paths.dir)}; rm -rf ${quote(old)}`,
    { stdin: pair.chain },
  );
}

/** What the edge's nginx renders for HTTPS; written after the store changed, read whenever the edge is configured. */
export function renderFile(store: Pick<TlsStore, 'edgeDir'>): string {
  return `${store.edgeDir}/tls/render.json`;
}

/**
 * What nginx renders for HTTPS at time `now`: only the certificates valid then (src/plan/tls/certificates.ts
 * certificatesServedAt); the hosts of an expired one are served over plain HTTP.
 */
export function edgeTlsRenderFrom(store: Pick<TlsStore, 'edgeDir'>, installed: readonly InstalledCertificate[], now: number, options: { port?: number; hstsMaxAge?: number } = {}): EdgeTlsRender {
  return {
    port: options.port ?? 443,
    challengeDir: challengeDir(store),
    certificates: certificatesServedAt(installed, now).served.map((c) => ({ id: c.id, names: c.names, ...pathsOf(store, c.id), serial: c.serial ?? String(c.notBefore) })),
    ...(options.hstsMaxAge !== undefined ? { hstsMaxAge: options.hstsMaxAge } : {}),
  };
}

function pathsOf(store: Pick<TlsStore, 'edgeDir'>, id: string): { chain: string; key: string } {
  const { chain, key } = certificatePaths(store, id);
  return { chain, key };
}

/** Written (or removed, for tls: off) by every command that brings the certificates up to date. */
export async function writeEdgeTlsRender(store: TlsStore, render: EdgeTlsRender | undefined): Promise<void> {
  if (render === undefined) await store.remote.shell(`rm -f ${quote(renderFile(store))}`);
  else await store.remote.writeFileAtomic(renderFile(store), JSON.stringify(render, null, 2) + '\n', 0o644);
}

/** The HTTPS part of the edge's configuration, or undefined when TLS is off (or was never set up). */
export async function readEdgeTlsRender(remote: Remote, edgeDir: string): Promise<EdgeTlsRender | undefined> {
  return parseEdgeTlsRender(await remote.readFile(renderFile({ edgeDir })), remote.name, edgeDir);
}

/** The HTTPS settings' file as read from `remoteName` (null: not there, so none). */
export function parseEdgeTlsRender(text: string | null, remoteName: string, edgeDir: string): EdgeTlsRender | undefined {
  if (text === null) return undefined;
  try {
    return JSON.parse(text) as EdgeTlsRender;
  } catch (error) {
    throw new OperationError(`${remoteName}:${renderFile({ edgeDir })} is not valid JSON`, 'Run depl tls renew to rewrite it.', 'EDGE_TLS_CORRUPT', { cause: error });
  }
}

export async function removeCertificate(store: TlsStore, id: string): Promise<void> {
  await store.remote.shell(`rm -rf ${quote(certificatePaths(store, id).dir)}`);
}

/** HTTP-01: the key authorization the edge answers at /.well-known/acme-challenge/<token>. */
export async function writeChallenge(store: TlsStore, token: string, keyAuthorization: string): Promise<void> {
  await store.remote.writeFileAtomic(`${challengeDir(store)}/${challengeFileName(token)}`, keyAuthorization, 0o644);
}

export async function removeChallenge(store: TlsStore, token: string): Promise<void> {
  await store.remote.exec(['rm', '-f', `${challengeDir(store)}/${challengeFileName(token)}`]);
}

export interface AcmeAccount {
  directory: string;
  /** PEM */
  key: string;
  url?: string;
}

/** The ACME account for one directory (a new key is made when the directory changes). */
export async function readAccount(store: TlsStore, directory: string): Promise<AcmeAccount | null> {
  const text = await store.remote.readFile(`${store.accountDir}/${ACME_ACCOUNT_FILE}`);
  if (text === null) return null;
  try {
    const account = JSON.parse(text) as AcmeAccount;
    return account.directory === directory && typeof account.key === 'string' ? account : null;
  } catch {
    return null;
  }
}

export async function saveAccount(store: TlsStore, account: AcmeAccount): Promise<void> {
  const file = `${store.accountDir}/${ACME_ACCOUNT_FILE}`;
  await store.remote.shell(`set -e; umask 077; mkdir -p ${quote(store.accountDir)}; cat > ${quote(`${file}.tmp`)}; mv -f ${quote(`${file}.tmp`)} ${quote(file)}`, {
    stdin: JSON.stringify(account),
  });
}
