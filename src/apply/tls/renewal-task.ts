import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { OperationError } from '../../errors.js';
import { quote } from '../../plan/shell.js';
import {
  planRenewerService, renewalRecordPath, renewerCodeDir, renewerFolders, renewerServiceName, RENEWER_DNS_SECRET, RENEWER_ROLE,
  type RenewalRecord, type RenewerDnsCredential, type RenewerSettings,
} from '../../plan/tls/renewal.js';
import { LABELS, planSecrets, type ServiceSpec, type SwarmSecretRef } from '../../plan/services.js';
import { planEngineGateService } from '../../plan/tls/engine-gate.js';
import { Secret } from '../../util/secret.js';
import { currentHeldCredential, heldCredentialWarning, pendingCredentialRetirements } from '../../plan/tls/renewer-credential.js';
import { heldRenewerCredentials } from './renewer-secret.js';
import type { Logger } from '../../util/log.js';
import { packagePath } from '../../util/paths.js';
import type { Engine } from '../docker.js';
import type { Remote } from '../remote.js';
import { createService, ensureSwarmSecret, listServices, removeService, serviceReplicas, updateService } from '../swarm.js';

/**
 * Installs the TLS renewal task (src/tls-renewer/main.ts, bundled by `npm run build` into dist/tls-renewer.mjs) and
 * its engine gate (src/engine-gate/main.ts, dist/engine-gate.mjs; the one of the two with the Docker
 * socket) on the manager: each bundle is copied once per content into the app's state folder, and the services
 * (src/plan/tls/renewal.ts, src/plan/tls/engine-gate.ts) created, or updated when their spec changed. The image is the node image the
 * cluster already has (the offline base image on local nodes), so nothing is built or pulled for it. With a
 * DNS-01 credential (`dns`), that goes into a swarm secret mounted into the task alone (never its environment,
 * which `docker service inspect` shows); a new credential is a new secret, and the old one goes once unused.
 */
const SPEC_LABEL = 'depl.renewer.spec';

const hash = (value: string | Buffer, length = 12) => createHash('sha256').update(value).digest('hex').slice(0, length);

export async function ensureRenewalTask(
  manager: Remote,
  engine: Engine,
  options: { settings: RenewerSettings; image: string; log: Logger } & ({ dns?: RenewerDnsCredential } | { dnsSecret: SwarmSecretRef }),
): Promise<'created' | 'updated' | 'unchanged'> {
  const { settings, log } = options;
  const folder = renewerCodeDir(settings.app);
  // the folders the task mounts (a bind mount's source must exist); the code folder first, the bundles go there
  await manager.exec(['mkdir', '-p', ...renewerFolders(settings.app)]);
  const [script, gateScript] = await Promise.all([copyBundle(manager, folder, 'tls-renewer.mjs', 'renewer'), copyBundle(manager, folder, 'engine-gate.mjs', 'gate')]);
  // the gate first: the task's first reload goes through it
  const gate = await ensureService(engine, planEngineGateService({ app: settings.app, image: options.image, script: gateScript.path, scriptHash: gateScript.hash }), log, 'the engine gate of the renewal task');
  const scriptHash = `${script.hash}-${gateScript.hash}`;
  // an earlier task's secret is kept as it is (src/plan/tls/renewal-upgrade.ts); a credential from depl.yaml is ensured
  const dns = 'dns' in options ? options.dns : undefined;
  const [dnsDocument] = dns === undefined ? [] : planSecrets(settings.app, [{ name: RENEWER_DNS_SECRET, value: new Secret(JSON.stringify(dns)) }]);
  const dnsSecret = 'dnsSecret' in options ? options.dnsSecret : dnsDocument === undefined ? undefined : await ensureSwarmSecret(engine, dnsDocument);
  const spec = planRenewerService({ settings, image: options.image, script: script.path, scriptHash, ...(dnsSecret !== undefined ? { dnsSecret } : {}) });
  const task = await ensureService(engine, spec, log, 'the certificate renewal task');
  // bundles of earlier depl versions: the services no longer run them
  await manager.shell(`for f in ${quote(folder)}/renewer-*.mjs ${quote(folder)}/gate-*.mjs; do [ "$f" = ${quote(script.path)} ] || [ "$f" = ${quote(gateScript.path)} ] || rm -f "$f"; done`, { check: false });
  return task !== 'unchanged' ? task : gate === 'created' ? 'updated' : gate;
}

/** A bundle of dist/ on the manager under a name that carries its content's hash (copied once per content). */
async function copyBundle(manager: Remote, folder: string, bundleName: string, prefix: string): Promise<{ path: string; hash: string }> {
  const bundleFile = packagePath('dist', bundleName);
  const bundle = await readFile(bundleFile).catch((error: Error) => {
    throw new OperationError(`the renewal task's bundle ${bundleFile} is missing (${error.message})`, 'Run `npm run build` in the depl checkout.', 'RENEWER_MISSING');
  });
  const contentHash = hash(bundle);
  const file = `${folder}/${prefix}-${contentHash}.mjs`;
  if ((await manager.exec(['test', '-f', file], { check: false })).code !== 0) await manager.writeFileAtomic(file, bundle, 0o644);
  return { path: file, hash: contentHash };
}

/** Creates the service, or updates it when its spec changed since (the spec's hash is its label). */
async function ensureService(engine: Engine, spec: ServiceSpec, log: Logger, what: string): Promise<'created' | 'updated' | 'unchanged'> {
  const specHash = hash(JSON.stringify(spec));
  spec.Labels[SPEC_LABEL] = specHash;
  const existing = (await listServices(engine, { [LABELS.app]: spec.Labels[LABELS.app]!, 'depl.role': RENEWER_ROLE })).find((s) => s.name === spec.Name);
  if (existing === undefined) {
    log.step(`starting ${what}, ${spec.Name}, on the manager`);
    await createService(engine, spec);
    return 'created';
  }
  if (existing.labels[SPEC_LABEL] === specHash) return 'unchanged';
  log.step(`updating ${what}, ${spec.Name}`);
  await updateService(engine, existing, spec);
  return 'updated';
}

/** Removes the task and its engine gate (tls turned off or to files, or the cluster going away); true if there was one. */
export async function removeRenewalTask(engine: Engine, app: string): Promise<boolean> {
  const existing = await listServices(engine, { [LABELS.app]: app, 'depl.role': RENEWER_ROLE });
  // the task before its gate: a round in progress never finds the gate gone
  const ordered = [...existing].sort((a, b) => Number(b.name === renewerServiceName(app)) - Number(a.name === renewerServiceName(app)));
  for (const service of ordered) await removeService(engine, service.id);
  return existing.some((s) => s.name === renewerServiceName(app));
}

export interface RenewalTaskStatus {
  installed: boolean;
  /** Running tasks / wanted, as `docker service ls` shows them (`1/1`). */
  replicas: string | null;
  running: boolean;
  last: RenewalRecord | null;
  /** The DNS credential node-up gave the task (the zero-config domain's DNS-01), and a warning when it is close to its end. */
  dnsCredential?: { id: string; expires: string | null; warning?: string; pending?: string[] };
}

/** For `depl status`: is the task there and running, and what did its last round do. */
export async function readRenewalTaskStatus(manager: Remote, engine: Engine, app: string): Promise<RenewalTaskStatus> {
  const name = renewerServiceName(app);
  const [listed, recordText, held] = await Promise.all([
    serviceReplicas(engine, [name]),
    manager.readFile(renewalRecordPath(app)),
    heldRenewerCredentials(engine, app),
  ]);
  const credential = currentHeldCredential(held);
  const warning = credential === undefined ? undefined : heldCredentialWarning(credential, Date.now());
  const pending = pendingCredentialRetirements(held);
  const dnsCredential = credential === undefined ? undefined : {
    id: credential.credentialId, expires: credential.expiresAt === null ? null : new Date(credential.expiresAt).toISOString(),
    ...(warning !== undefined ? { warning } : {}), ...(pending.length > 0 ? { pending } : {}),
  };
  const tasks = listed[name];
  const replicas = tasks === undefined ? null : `${tasks.running}/${tasks.desired}`;
  let last: RenewalRecord | null = null;
  try {
    last = recordText === null ? null : (JSON.parse(recordText) as RenewalRecord);
  } catch {
    last = null;
  }
  return { installed: tasks !== undefined, replicas, running: replicas !== null && /^[1-9]\d*\//.test(replicas), last, ...(dnsCredential !== undefined ? { dnsCredential } : {}) };
}
