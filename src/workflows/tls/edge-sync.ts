import type { DeplConfig, TlsConfig } from '../../config/schema.js';
import { OperationError } from '../../errors.js';
import type { EdgeTlsRender } from '../../plan/tls/nginx.js';
import { certificatesServedAt, describeWithheld, tlsSettings, wantedCertificates, type InstalledCertificate, type WithheldCertificate } from '../../plan/tls/certificates.js';
import { planCertificates } from '../../plan/tls/renewal-decision.js';
import { edgeTlsRenderFrom, listCertificates, readEdgeTlsRender, removeCertificate, writeEdgeTlsRender, type TlsStore } from '../../apply/tls/store.js';
import type { Logger } from '../../util/log.js';

// The edge's HTTPS settings kept in step with the certificate store: what every release change runs under its
// lock (through the cluster port's `certificates`), so it imports no workflow and loads no ACME client.

/** What the edge serves for HTTPS after a sync, and what the store holds. */
export interface EdgeTlsSync {
  tls: TlsConfig;
  /** What the store holds afterwards. */
  installed: InstalledCertificate[];
  removed: string[];
  /** Certificates in the store the edge does not serve now (expired, not yet valid): their hosts are on plain HTTP. */
  withheld: WithheldCertificate[];
  /** The HTTPS part of the edge configuration changed: the edge must be re-applied (a graceful reload). */
  renderChanged: boolean;
  /** What nginx renders for HTTPS from now on (undefined: plain HTTP), as written next to the edge's files. */
  render: EdgeTlsRender | undefined;
}

/**
 * Makes what the edge renders for HTTPS match the store at `now`, WITHOUT any ACME order or cloud call: the
 * certificates no version needs any more are removed, and only those valid now are rendered (an expired
 * one's hosts fall back to plain HTTP). What release changes (switch, rollback, canary, prune) run under their
 * lock, so they never wait on a CA. `versions` may be a function: it is only asked when certificates are on.
 * With `write: false` (a dry run) nothing is removed or written: the result says what the edge would render.
 */
export async function syncEdgeCertificates(
  store: TlsStore,
  config: Pick<DeplConfig, 'provider' | 'tls' | 'domain'>,
  versions: readonly string[] | (() => Promise<readonly string[]>),
  options: { write?: boolean; now?: () => number } = {},
): Promise<EdgeTlsSync> {
  const tls = tlsSettings(config);
  const write = options.write !== false;
  if (tls.mode === 'off') {
    const before = await readEdgeTlsRender(store.remote, store.edgeDir);
    if (before !== undefined && write) await writeEdgeTlsRender(store, undefined);
    return { tls, installed: [], removed: [], withheld: [], renderChanged: before !== undefined, render: undefined };
  }
  const now = (options.now ?? Date.now)();
  const [before, listed, wanted] = await Promise.all([
    readEdgeTlsRender(store.remote, store.edgeDir),
    listCertificates(store),
    typeof versions === 'function' ? versions() : Promise.resolve(versions),
  ]);
  const removed = planCertificates(wantedCertificates(tls, config.domain, wanted), listed, now).remove;
  if (write) for (const id of removed) await removeCertificate(store, id);
  const installed = listed.filter((c) => !removed.includes(c.id));
  const render = edgeTlsRenderFrom(store, installed, now, tls.hstsMaxAge !== undefined ? { hstsMaxAge: tls.hstsMaxAge } : {});
  const renderChanged = JSON.stringify(render) !== JSON.stringify(before);
  if (renderChanged && write) await writeEdgeTlsRender(store, render);
  return { tls, installed, removed, withheld: certificatesServedAt(installed, now).withheld, renderChanged, render };
}

/**
 * What every release change runs under its lock (src/workflows/release.ts): the sync above, never an issue or
 * a renewal. Certificates are issued by buildinst, `depl tls renew` and the renewal task; a release change in
 * an incident goes through at once with what the store has. Returns the new HTTPS settings when the edge must
 * reload them, null when they did not change.
 */
export async function syncCertificatesForRelease(store: TlsStore, config: Pick<DeplConfig, 'provider' | 'tls' | 'domain'>, log: Logger, versions: readonly string[], now?: () => number): Promise<{ render: EdgeTlsRender | undefined } | null> {
  try {
    const result = await syncEdgeCertificates(store, config, versions, now !== undefined ? { now } : {});
    for (const cert of result.withheld) log.warn(describeWithheld(cert));
    return result.renderChanged ? { render: result.render } : null;
  } catch (error) {
    // the store unreadable does not stop a rollback: the edge keeps the HTTPS settings it has
    if (!(error instanceof OperationError)) throw error;
    log.warn(`certificates not checked: ${error.message}${error.hint ? `\n  ${error.hint}` : ''}`);
    return null;
  }
}
