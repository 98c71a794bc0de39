import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { OperationError } from '../../errors.js';
import { quote } from '../../plan/shell.js';
import {
  planRenewerService, renewalRecordPath, renewerServiceName, renewerStateRoot, RENEWER_DNS_SECRET, RENEWER_ROLE,
  type RenewalRecord, type RenewerDnsCredential, type RenewerSettings,
} from '../../plan/tls/renewal.js';
import { LABELS, planSecrets } from '../../plan/services.js';
import { Secret } from '../../util/secret.js';
import type { Logger } from '../../util/log.js';
import { packagePath } from '../../util/paths.js';
import type { Engine } from '../docker.js';
import type { Remote } from '../remote.js';
import { createService, ensureSwarmSecret, listServices, removeService, serviceReplicas, updateService } from '../swarm.js';

/**
 * Installs the TLS renewal task (src/tls-renewer/main.ts, bundled by `npm run build` into dist/tls-renewer.mjs) on
 * the manager: the bundle is copied once per content into the app's state folder, and the service
 * (src/plan/tls/renewal.ts) created, or updated when its spec changed. The image is the node image the
 * cluster already has (the offline base image on local nodes), so nothing is built or pulled for it. With a
 * DNS-01 credential (`dns`), that goes into a swarm secret mounted into the task alone (never its environment,
 * which `docker service inspect` shows); a new credential is a new secret, and the old one goes once unused.
 */
const SPEC_LABEL = 'depl.renewer.spec';

const hash = (value: string | Buffer, length = 12) => createHash('sha256').update(value).digest('hex').slice(0, length);

export async function ensureRenewalTask(manager: Remote, engine: Engine, options: { settings: RenewerSettings; image: string; log: Logger; dns?: RenewerDnsCredential }): Promise<'created' | 'updated' | 'unchanged'> {
  const { settings, log } = options;
  const bundleFile = packagePath('dist', 'tls-renewer.mjs');
  const bundle = await readFile(bundleFile).catch((error: Error) => {
    throw new OperationError(`the renewal task's bundle ${bundleFile} is missing (${error.message})`, 'Run `npm run build` in the depl checkout.', 'RENEWER_MISSING');
  });
  const scriptHash = hash(bundle);
  const folder = `${renewerStateRoot}/${settings.app}/renewer`;
  const script = `${folder}/renewer-${scriptHash}.mjs`;
  if ((await manager.exec(['test', '-f', script], { check: false })).code !== 0) {
    await manager.writeFileAtomic(script, bundle, 0o644);
  }
  const [dnsDocument] = options.dns === undefined ? [] : planSecrets(settings.app, [{ name: RENEWER_DNS_SECRET, value: new Secret(JSON.stringify(options.dns)) }]);
  const dnsSecret = dnsDocument === undefined ? undefined : await ensureSwarmSecret(engine, dnsDocument);
  const spec = planRenewerService({ settings, image: options.image, script, scriptHash, ...(dnsSecret !== undefined ? { dnsSecret } : {}) });
  const specHash = hash(JSON.stringify(spec));
  spec.Labels[SPEC_LABEL] = specHash;
  const existing = (await listServices(engine, { [LABELS.app]: settings.app, 'depl.role': RENEWER_ROLE })).find((s) => s.name === spec.Name);
  let outcome: 'created' | 'updated' | 'unchanged' = 'unchanged';
  if (existing === undefined) {
    log.step(`starting the certificate renewal task ${spec.Name} on the manager`);
    await createService(engine, spec);
    outcome = 'created';
  } else if (existing.labels[SPEC_LABEL] !== specHash) {
    log.step(`updating the certificate renewal task ${spec.Name}`);
    await updateService(engine, existing, spec);
    outcome = 'updated';
  }
  // bundles of earlier depl versions: the service no longer runs them
  await manager.shell(`for f in ${quote(folder)}/renewer-*.mjs; do [ "$f" = ${quote(script)} ] || rm -f "$f"; done`, { check: false });
  return outcome;
}

/** Removes the task (tls turned off or to files, or the cluster going away); true if there was one. */
export async function removeRenewalTask(engine: Engine, app: string): Promise<boolean> {
  const existing = (await listServices(engine, { [LABELS.app]: app, 'depl.role': RENEWER_ROLE })).find((s) => s.name === renewerServiceName(app));
  if (existing === undefined) return false;
  await removeService(engine, existing.id);
  return true;
}

export interface RenewalTaskStatus {
  installed: boolean;
  /** Running tasks / wanted, as `docker service ls` shows them (`1/1`). */
  replicas: string | null;
  running: boolean;
  last: RenewalRecord | null;
}

/** For `depl status`: is the task there and running, and what did its last round do. */
export async function readRenewalTaskStatus(manager: Remote, engine: Engine, app: string): Promise<RenewalTaskStatus> {
  const name = renewerServiceName(app);
  const [listed, recordText] = await Promise.all([
    serviceReplicas(engine, [name]),
    manager.readFile(renewalRecordPath(app)),
  ]);
  const tasks = listed[name];
  const replicas = tasks === undefined ? null : `${tasks.running}/${tasks.desired}`;
  let last: RenewalRecord | null = null;
  try {
    last = recordText === null ? null : (JSON.parse(recordText) as RenewalRecord);
  } catch {
    last = null;
  }
  return { installed: tasks !== undefined, replicas, running: replicas !== null && /^[1-9]\d*\//.test(replicas), last };
}
