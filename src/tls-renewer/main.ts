import { readFile } from 'node:fs/promises';
import { reloadEdgeConfig } from '../apply/edge/config.js';
import { containerRenderOptions, type EdgeSite } from '../apply/edge/site.js';
import { LocalRemote } from '../apply/local-remote.js';
import { withLock } from '../apply/lock.js';
import { acmeIssuer, type CertificateIssuer } from '../apply/tls/issuer.js';
import type { ChallengeResponder } from '../apply/tls/acme.js';
import { designateResponderWith, edgeChallengeCheck, httpChallengeResponder } from '../apply/tls/responders.js';
import { edgeTlsRenderFrom, listCertificates, readEdgeTlsRender, writeEdgeTlsRender, type TlsStore } from '../apply/tls/store.js';
import { isDeplError, OperationError } from '../errors.js';
import type { EdgeTlsRender } from '../plan/tls/nginx.js';
import { certificatesServedAt, describeWithheld } from '../plan/tls/certificates.js';
import { edgeDir, edgeServiceName } from '../plan/edge-service.js';
import {
  nextCheckDelay, renewalRecordPath, renewerStateRoot, tlsStateDir, type RenewalRecord, type RenewerDnsCredential, type RenewerSettings,
} from '../plan/tls/renewal.js';
import { decideRenewals, describeSpan } from '../plan/tls/renewal-decision.js';
import { runInterruptCleanups } from '../util/interrupt.js';
import { createLogger } from '../util/log.js';
import { EdgeContainerRemote, engineGate } from './edge-container.js';
import { renewerEdgeCommands } from '../plan/tls/engine-gate.js';

/**
 * The renewal task on the cluster (a swarm service beside the edge, installed by depl buildinst): every round
 * it reads the certificates in the manager's store, decides (src/plan/tls/renewal.ts), and when one is due it
 * takes the cluster lock like any depl command, renews it (HTTP-01 through the edge, or DNS-01 through
 * Designate with the application credential buildinst gave it as a secret), and reloads the
 * edge's nginx gracefully. A certificate that expired (or became valid) since the edge last rendered is taken
 * out of (or put into) the edge the same way, so an expired one is never served for longer than a round. Each round's decisions go to its log (`docker service logs <app>-tls-renewer`) and
 * its outcome to <state>/<app>/tls/renewal.json, which `depl status` shows.
 */
const settings = JSON.parse(process.env.DEPL_RENEWER ?? 'null') as RenewerSettings | null;
const base = createLogger({ color: false });
const stamp = (m: string) => `${new Date().toISOString()} ${m}`;
const log = { debug: (m: string) => base.info(stamp(m)), info: (m: string) => base.info(stamp(m)), step: (m: string) => base.info(stamp(m)), warn: (m: string) => base.warn(stamp(m)), error: (m: string) => base.error(stamp(m)) };

if (settings === null) {
  log.error('DEPL_RENEWER is not set: this task is started by depl buildinst with its settings');
  process.exit(2);
}
const local = new LocalRemote();
const store: TlsStore = { remote: local, accountDir: tlsStateDir(settings.app), edgeDir: edgeDir(settings.app) };

let stopping = false;
let wake: (() => void) | undefined;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    log.info(`${signal}: stopping after this round`);
    stopping = true;
    wake?.();
  });
}

/** The one issuer (src/apply/tls/issuer.ts), writing through the lock's fence: a round that lost the lease writes nothing. */
function issuerFor(fencedStore: TlsStore): CertificateIssuer {
  const s = settings!;
  return acmeIssuer(fencedStore, {
    directory: s.directory,
    ...(s.email !== undefined ? { email: s.email } : {}),
    ...(s.caBundle !== undefined ? { caBundle: s.caBundle } : {}),
    pollMs: 500,
  }, async () => (s.challenge === 'dns-01' ? dnsResponder() : httpChallengeResponder(fencedStore, edgeChallengeCheck(s.edgeUrl))), log);
}

/**
 * DNS-01 through Designate, signed in with the application credential buildinst mounted as this task's
 * secret (decideRenewals renews a DNS-01 certificate only when the settings name that file).
 */
async function dnsResponder(): Promise<ChallengeResponder> {
  const file = settings!.dnsCredentialFile;
  if (file === undefined) throw new OperationError('this task was given no DNS credential', 'Set tls.dnsCloud to a cloud with an application credential and run depl buildinst.', 'TLS_NO_DNS_CLOUD');
  const text = await readFile(file, 'utf8').catch((error: Error) => {
    throw new OperationError(`cannot read the task's DNS credential ${file}: ${error.message}`, 'Run depl buildinst, which mounts it.', 'TLS_NO_DNS_CLOUD');
  });
  return designateResponderWith(JSON.parse(text) as RenewerDnsCredential);
}

/**
 * What the edge should render for HTTPS at `now` (only the certificates valid then); changed: it differs from
 * what it renders; withheld: why the others are left out, as of the same moment.
 */
async function edgeRenderAt(now: number): Promise<{ render: EdgeTlsRender; changed: boolean; withheld: string[] }> {
  const s = settings!;
  const [installed, current] = await Promise.all([listCertificates(store), readEdgeTlsRender(local, store.edgeDir)]);
  const render = edgeTlsRenderFrom(store, installed, now, s.hstsMaxAge !== undefined ? { hstsMaxAge: s.hstsMaxAge } : {});
  return { render, changed: JSON.stringify(render) !== JSON.stringify(current), withheld: certificatesServedAt(installed, now).withheld.map(describeWithheld) };
}

/**
 * The store changed, or a certificate expired or became valid since the edge last rendered: nginx renders the
 * certificates valid now, checks the file and reloads gracefully, in the edge's container.
 */
async function reloadEdge(fencedStore: TlsStore, render: EdgeTlsRender): Promise<void> {
  const s = settings!;
  await writeEdgeTlsRender(fencedStore, render);
  const gate = engineGate(s.app);
  const container = await gate.runningContainerOf(edgeServiceName(s.app));
  if (container === null) throw new OperationError(`the edge service ${edgeServiceName(s.app)} has no running container on this node; the new certificates are served from its next start`, undefined, 'EDGE_NOT_RUNNING');
  const commands = renewerEdgeCommands(s.app, containerRenderOptions(s.app).listen.port);
  const site: EdgeSite = {
    // nginx through the engine gate, which runs these commands and nothing else in the edge's container
    remote: new EdgeContainerRemote(container, gate),
    // the edge's files in the task's own mount of its folder, written through the lock's fence
    files: fencedStore.remote,
    dir: edgeDir(s.app),
    nginx: (args) => ['nginx', ...args],
    reload: commands.reload,
    processes: commands.processes,
    render: { ...containerRenderOptions(s.app), tls: render },
    url: s.edgeUrl,
    // the probe answers only the container's loopback: asked from inside it, as depl asks
    probe: commands.probe,
  };
  const { reloadMs } = await reloadEdgeConfig(site, { app: s.app });
  log.info(`the edge serves ${render.certificates.map((c) => c.id).join(', ') || 'no certificate (plain HTTP)'} (graceful reload, ${Math.round(reloadMs)} ms)`);
}

async function round(): Promise<{ record: Omit<RenewalRecord, 'next'>; lastRound: 'ok' | 'failed' | 'locked' }> {
  const s = settings!;
  const installed = await listCertificates(store);
  const now = Date.now();
  const decisions = decideRenewals(installed, now, s);
  const withheld = certificatesServedAt(installed, now).withheld.map(describeWithheld);
  const decided = decisions.map((d) => `${d.names.join(', ')}: ${d.reason}`);
  const lines = [...decided, ...withheld];
  for (const line of lines) log.info(line);
  const record = (outcome: RenewalRecord['outcome'], renewed: string[] = [], failed: RenewalRecord['failed'] = [], recorded = lines) => ({ at: new Date().toISOString(), outcome, renewed, failed, decisions: recorded });
  if (!decisions.some((d) => d.action === 'renew') && !(await edgeRenderAt(now)).changed) return { record: record('nothing-due'), lastRound: 'ok' };
  try {
    return await withLock(local, s.app, { command: 'tls renewal task', waitMs: 0, root: renewerStateRoot, log }, async (lock) => {
      // every write under the lock goes through its fence: a round whose lease ran out (a stalled CA, a
      // paused node) cannot put its certificate over one a newer holder installed
      const fencedStore: TlsStore = { ...store, remote: lock.fenced(local) };
      const issuer = issuerFor(fencedStore);
      // a depl command may have renewed them while this round waited: decide again under the lock
      const due = decideRenewals(await listCertificates(store), Date.now(), s).filter((d) => d.action === 'renew');
      const renewed: string[] = [];
      const failed: RenewalRecord['failed'] = [];
      for (const decision of due) {
        try {
          await issuer.issue(decision);
          renewed.push(decision.id);
          log.info(`renewed the certificate for ${decision.names.join(', ')}`);
        } catch (error) {
          if (!isDeplError(error) || error.code === 'LOCK_LOST') throw error;
          failed.push({ id: decision.id, reason: error.message });
          log.error(`could not renew ${decision.names.join(', ')}: ${error.message}${error.hint ? ` (${error.hint})` : ''}`);
        }
      }
      const edge = await edgeRenderAt(Date.now());
      if (edge.changed) {
        try {
          await reloadEdge(fencedStore, edge.render);
        } catch (error) {
          if (!isDeplError(error)) throw error;
          failed.push({ id: 'edge', reason: error.message });
          log.error(`the edge did not reload: ${error.message}`);
        }
      }
      const outcome = failed.length > 0 ? 'failed' : renewed.length > 0 ? 'renewed' : edge.changed ? 'edge-updated' : 'nothing-due';
      // a certificate may have expired while this round renewed: the record says what the edge was given
      for (const line of edge.withheld.filter((l) => !withheld.includes(l))) log.info(line);
      return { record: record(outcome, renewed, failed, [...decided, ...edge.withheld]), lastRound: failed.length > 0 ? 'failed' : 'ok' };
    });
  } catch (error) {
    if (isDeplError(error) && error.code === 'LOCKED') {
      log.info(`${error.message}; looking again soon`);
      return { record: record('locked'), lastRound: 'locked' };
    }
    throw error;
  }
}

log.info(`renewal task for ${settings.domain}: renews certificates with less than ${describeSpan(settings.renewBeforeMs)} left, looks every ${describeSpan(settings.everyMs)} (${settings.directory})`);
while (!stopping) {
  let result: Awaited<ReturnType<typeof round>>;
  try {
    result = await round();
  } catch (error) {
    const message = (error as Error).message;
    log.error(`the round failed: ${message}`);
    result = { record: { at: new Date().toISOString(), outcome: 'failed', renewed: [], failed: [{ id: '*', reason: message }], decisions: [] }, lastRound: 'failed' };
  }
  const installed = await listCertificates(store).catch(() => []);
  const delay = nextCheckDelay(installed, Date.now(), settings, result.lastRound);
  const record: RenewalRecord = { ...result.record, next: new Date(Date.now() + delay).toISOString() };
  await local.writeFileAtomic(renewalRecordPath(settings.app), JSON.stringify(record, null, 2) + '\n', 0o644).catch((error: Error) => log.error(`cannot record the round: ${error.message}`));
  log.info(`next round in ${describeSpan(delay)}`);
  if (stopping) break;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, delay);
    wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}
await runInterruptCleanups(5_000, (m) => log.warn(m));
process.exit(0);
