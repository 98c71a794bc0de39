import * as z from 'zod';
import { AUTOSCALER_GATE_SERVICE, checkAppName, checkDomainName, checkHealthPath, checkSecretName, checkServiceName, RESERVED_ACCESSORY_NAMES, type NameCheck } from '../names.js';
import { looksSecret } from '../util/secret.js';

const named = (check: (v: string) => NameCheck, what: string) =>
  z.string().superRefine((value, ctx) => {
    const result = check(value);
    if (!result.ok) ctx.addIssue({ code: 'custom', message: `${what} "${value}" ${result.reason}` });
  });

const healthPath = z.string().superRefine((value, ctx) => {
  const result = checkHealthPath(value);
  if (!result.ok) ctx.addIssue({ code: 'custom', message: `health path ${JSON.stringify(value)} ${result.reason}` });
});

const secretName = named(checkSecretName, 'secret name');
/** Names of secrets (declared in the top-level `secrets:`) mounted at /run/secrets/<name>. */
const secretRefs = z.array(secretName).default([]);

const relativeOrAbsolutePath = z.string().min(1, 'expected a path');
/**
 * A path depl hands to other programs (ssh, Ansible's inventory): a control character in it (a newline, say)
 * would start a new line in what depl writes, so it is refused rather than passed on.
 */
// eslint-disable-next-line no-control-regex
const plainPath = relativeOrAbsolutePath.regex(/^[^\u0000-\u001f\u007f]+$/, 'expected a path without control characters (no newline, tab or escape)');
/**
 * Where an accessory runs: `manager` (the swarm's manager role), or the hostname of one node (`node-2`), which
 * becomes the placement constraint node.hostname==<name>.
 */
const accessoryNode = z.string().superRefine((value, ctx) => {
  if (value === 'manager') return;
  const check = checkDomainName(value);
  if (!check.ok) ctx.addIssue({ code: 'custom', message: `expected "manager" or a node's hostname (like node-2): ${JSON.stringify(value)} ${check.reason}` });
});
const command = z.array(z.string()).min(1, 'expected a non-empty list of arguments');
/** A named volume and where it is mounted: `name:/path/in/container`. */
const volumeSpec = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*:\/[^\s]*$/, 'expected "name:/path/in/container"');
const containerPath = z.string().regex(/^\/[^\0\n]*$/, 'expected an absolute path in the container, like /etc/app.conf');
/** As `docker run --user`: a name or uid, optionally `:group`. */
const user = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/, 'expected a user like 1000, app or 1000:1000');
const stopSignal = z.string().regex(/^(SIG[A-Z0-9+-]+|\d+)$/, 'expected a signal like SIGINT');
const containerDuration = z.string().regex(/^\d+(ms|s|m)$/, 'expected a duration like 10s');
/** Bytes as compose writes them: 512m, 1g, 1048576. */
const memory = z.string().regex(/^\d+(\.\d+)?[bkmg]?$/, 'expected a size like 512m or 1g');
const resourceAmount = z.strictObject({ cpus: z.number().positive().max(1024).optional(), memory: memory.optional() });
/** Swarm's resource limits (the task is stopped above them) and reservations (where the scheduler may place it). */
const resources = z.strictObject({ limits: resourceAmount.optional(), reservations: resourceAmount.optional() });
/**
 * Secrets mounted somewhere else than /run/secrets/<name>: the compose file's own target (a file name under
 * /run/secrets, like `db-password`, or an absolute path), by secret name.
 */
const secretPaths = z.record(z.string(), z.string().regex(/^(\/[^\0\n]*|[A-Za-z0-9_.][A-Za-z0-9_.-]*)$/, 'expected a file name under /run/secrets or an absolute path')).default({});
/**
 * Files of the project mounted read-only in the container, by their path there: `/etc/nginx/nginx.conf: nginx.conf`.
 * Each becomes a swarm config named after its content (compose's configs: and read-only binds); a folder is
 * one config per file under it.
 */
const projectFiles = z.record(containerPath, z.string().min(1)).default({});
/** A swarm healthcheck run in the container (compose's healthcheck:): a task counts as running once it passes. */
const containerHealth = z.strictObject({
  command,
  interval: containerDuration.default('30s'),
  timeout: containerDuration.default('30s'),
  retries: z.number().int().min(1).max(100).default(3),
  startPeriod: containerDuration.default('0s'),
});

/** `500ms`, `30s`, `5m`, `1h`. */
const duration = z.string().regex(/^\d+(ms|s|m|h)$/, 'expected a duration like 30s, 5m or 1h');

const localProvider = z.strictObject({
  type: z.literal('local'),
  nodes: z.number().int().min(1).max(9).default(3),
  /** The /24 the node containers live on; node i gets .(10+i). */
  subnet: z.string().regex(/^\d{1,3}\.\d{1,3}\.\d{1,3}\.0\/24$/, 'expected an IPv4 /24 like 192.168.77.0/24').default('192.168.77.0/24'),
  /** Names the node containers, their volumes and bridge (`<prefix>-node-1`, `<prefix>-net`); default `depl-<app>`. */
  prefix: z.string().regex(/^[a-z][a-z0-9-]{0,29}$/, 'expected lower-case letters, digits and "-", starting with a letter, at most 30 characters').optional(),
  /**
   * `docker`: nodes log in as root and have Docker. `cloud`: nodes like a fresh Ubuntu cloud image on Nectar
   * (login user `ubuntu` with passwordless sudo, no root login, no Docker until node-up installs it).
   */
  image: z.enum(['docker', 'cloud']).default('docker'),
});

/**
 * A pool's size: a number (exactly that many nodes), or a range `min..max`: node-up keeps the count the stack has
 * within it (starting at min) and `depl node-up --pool <name>=<n>` sets it (src/plan/pools.ts poolCounts).
 */
const poolCount = z.union([
  z.number().int('expected a whole number of nodes').min(0, 'expected 0 or more nodes').max(50, 'expected at most 50 nodes'),
  z.string().regex(/^\d+\.\.\d+$/, 'expected a number of nodes or a range like 0..4'),
]).transform((value, ctx) => {
  if (typeof value === 'number') return { min: value, max: value };
  const [min, max] = value.split('..').map(Number) as [number, number];
  if (min > max) ctx.addIssue({ code: 'custom', message: `the range ${value} runs backwards: expected min..max with min <= max` });
  if (max > 50) ctx.addIssue({ code: 'custom', message: `the range ${value} goes above 50 nodes` });
  return { min, max };
});

/**
 * A worker pool (provider.pools.<name>): its own servers in the stack, beside the nodes, of their own flavor
 * (Nectar's p3 flavors are preemptible, a quarter of the SUs). They join the swarm as workers labelled
 * depl.pool=<name>; the services named run only there, and no other service does.
 */
const pool = z.strictObject({
  flavor: z.string().min(1, 'expected a flavor name like p3.small'),
  count: poolCount,
  /** The cloud may delete its nodes with a short warning (an ACPI shutdown): they hand their tasks off on it. */
  preemptible: z.boolean().default(false),
  services: z.array(z.string().min(1)).min(1, 'expected the services that run on this pool'),
  /**
   * The autoscale controller changes the pool's count within its range (src/plan/pool-autoscale.ts): more nodes
   * while the queue is deep and the SU budget (provider.allocation) lasts, back to the minimum after the queue
   * has stayed empty for `idle`, and lost (preempted) nodes made again. It reads the backlog as the autoscale
   * policy of one of the pool's services does, and updates the stack with the application credential in the
   * declared secret `credential` (JSON: auth_url, application_credential_id, application_credential_secret,
   * region_name; a credential of the user who runs node-up, see README).
   */
  autoscale: z.strictObject({
    targetBacklog: z.number().positive('expected a number of tasks above 0'),
    idle: duration.default('10m'),
    upCooldown: duration.default('2m'),
    credential: secretName,
  }).optional(),
});

const openstackProvider = z.strictObject({
  type: z.literal('openstack'),
  /** The cloud's name in clouds.yaml; OS_CLOUD or OS_* variables are used when absent. */
  cloud: z.string().min(1).optional(),
  template: relativeOrAbsolutePath.default('heat/stack.yaml'),
  stack: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, 'expected a Heat stack name').optional(),
  nodes: z.number().int().min(1).max(50).default(3),
  parameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  timeoutMinutes: z.number().int().min(1).max(240).default(30),
  region: z.string().optional(),
  /**
   * SU per hour by flavor name, added to (and overriding) Nectar's published rates (src/plan/service-units.ts):
   * plan and status show what the cluster costs per hour and per day.
   */
  serviceUnits: z.strictObject({
    rates: z.record(z.string().min(1), z.number().nonnegative('expected SU per hour, 0 or more')).default({}),
  }).default({ rates: {} }),
  /** Worker pools by name (lower-case letters, digits and "-"): see `pool` above. */
  pools: z.record(z.string(), pool).default({}),
  /** The allocation's end and the SUs it has left: plan and status show how many days the budget lasts. */
  /**
   * The zero-config domain: `domain` is a name in this Designate zone of the project (Nectar gives every project
   * `<project>.cloud.edu.au.`), and node-up keeps its A records (`<domain>` and `*.<domain>`) pointing at the
   * cluster's entry address; node-down removes the ones it made. TLS then defaults to DNS-01 on this zone.
   * `depl init` writes it when it took the domain from Designate (src/plan/domain-records.ts).
   */
  dns: z.strictObject({
    zone: z.string().superRefine((value, ctx) => {
      const check = value.endsWith('.') ? checkDomainName(value.slice(0, -1)) : { ok: false as const, reason: 'must end with "." (a fully qualified zone name, as Designate writes it)' };
      if (!check.ok) ctx.addIssue({ code: 'custom', message: `zone "${value}" ${check.reason}` });
    }),
  }).optional(),
  allocation: z.strictObject({
    endsOn: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date like 2027-06-30').refine((v) => Number.isFinite(Date.parse(`${v}T00:00:00Z`)), 'not a calendar date').optional(),
    suBudget: z.number().nonnegative('expected the SUs left, 0 or more').optional(),
  }).optional(),
});

const build = z.strictObject({
  context: relativeOrAbsolutePath.default('.'),
  dockerfile: relativeOrAbsolutePath,
  args: z.record(z.string(), z.string()).default({}),
  /** The multi-stage Dockerfile's stage to build (compose's build.target); default: its last stage. */
  target: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'expected a stage name').optional(),
});

/**
 * More names the app's containers reach a service or accessory by, beside its own: a Compose name that is not a
 * depl name (`my_db`, `Web`), so code written for compose resolves it unchanged. Host-name characters only.
 */
const networkAliases = z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'expected a host name (letters, digits, "_", ".", "-"; at most 63 characters)')).default([]);

const service = z.strictObject({
  build: build.optional(),
  aliases: networkAliases,
  /** Reuse another service's image (the worker runs the api's image with another command). */
  from: z.string().optional(),
  image: z.string().optional(),
  /** The container's arguments, replacing the image's CMD (its ENTRYPOINT stays), as `docker run IMAGE ARGS...`. */
  command: command.optional(),
  /**
   * Append `--config file:///run/depl/config.json` to the arguments (the crawler's and EGF2-style services'
   * contract). Off by default: every service finds the document through DEPL_CONFIG_FILE without it.
   */
  configArg: z.boolean().default(false),
  port: z.number().int().min(1).max(65535).optional(),
  replicas: z.number().int().min(0).max(100).default(1),
  /** Reached through the edge at <version>.<domain>. */
  http: z.boolean().default(false),
  health: healthPath.optional(),
  env: z.record(z.string(), z.string()).default({}),
  secrets: secretRefs,
  stopGracePeriod: z.string().regex(/^\d+(ms|s|m)$/, 'expected a duration like 10s').default('15s'),
  /** Replaces the image's ENTRYPOINT (compose's entrypoint:). */
  entrypoint: command.optional(),
  user: user.optional(),
  workdir: containerPath.optional(),
  stopSignal: stopSignal.optional(),
  resources: resources.optional(),
  healthcheck: containerHealth.optional(),
  secretPaths,
  files: projectFiles,
  /**
   * A stateful service (compose's gitea, nextcloud: a named volume and an HTTP port): `name:/path` mounted in its
   * one task, pinned to `node` (default the manager) where the volume lives. The volume outlives versions; one
   * version runs the service at a time, and a new version takes the volume over stop-first (README: Stateful web apps).
   */
  volume: volumeSpec.optional(),
  /** Where a service with a volume runs: "manager", or a node's hostname. Only with volume:. */
  node: accessoryNode.optional(),
});

const accessory = z.strictObject({
  image: z.string().min(1),
  aliases: networkAliases,
  command: command.optional(),
  volume: volumeSpec.optional(),
  /** "manager", or a node name. */
  node: accessoryNode.default('manager'),
  port: z.number().int().min(1).max(65535).optional(),
  env: z.record(z.string(), z.string()).default({}),
  secrets: secretRefs,
  /**
   * A command run in the accessory's container (`[pg_isready, -U, app]`); exit 0 means healthy. buildinst
   * waits for it before the version's services start, and swarm restarts the task when it keeps failing.
   */
  health: z.strictObject({
    command,
    interval: z.string().regex(/^\d+(ms|s|m)$/, 'expected a duration like 5s').default('5s'),
    retries: z.number().int().min(1).max(100).default(5),
    timeout: containerDuration.default('5s'),
    /** Failures in this time after a start do not count (initdb, loading an append-only file). */
    startPeriod: containerDuration.default('60s'),
  }).optional(),
  entrypoint: command.optional(),
  user: user.optional(),
  workdir: containerPath.optional(),
  stopSignal: stopSignal.optional(),
  stopGracePeriod: containerDuration.default('30s'),
  resources: resources.optional(),
  secretPaths,
  files: projectFiles,
  /** Accessories created (and healthy) before this one (compose's depends_on between image services). */
  dependsOn: z.array(z.string()).default([]),
  /**
   * How `depl backup` copies its volume: `redis` (a BGSAVE snapshot, online; the default for redis images) or
   * `volume` (pause, copy the volume, resume; the default otherwise). `passwordSecret`: the secret holding
   * Redis's requirepass, when the accessory lists several.
   */
  backup: z.strictObject({
    kind: z.enum(['redis', 'volume']).optional(),
    passwordSecret: secretName.optional(),
  }).optional(),
  /**
   * `database`: every branch deploy (`buildinst --branch`) gets a database of its own on this server (postgres,
   * mysql, mariadb: a database and a user; redis: a logical database number), made before its release phase and
   * backed up and dropped by `depl prune`; versions of the main line keep the shared one. `prefix` (redis only):
   * a key prefix per branch instead of a number (README: Branch databases).
   */
  perBranch: z.enum(['database', 'prefix']).optional(),
  /**
   * With perBranch (postgres, mysql): what a new branch database starts with: `schema` (the shared database's
   * schema, no rows) or `{ file: <path> }` (a dump in the project folder, such as one prune wrote under
   * .depl/backups); default empty.
   */
  seed: z.union([z.literal('schema'), z.strictObject({ file: relativeOrAbsolutePath })]).optional(),
});


/**
 * Queue-driven replicas of one service (the key): a controller in the swarm reads the backlog from the app's
 * metrics and keeps ceil(backlog / targetBacklog) replicas within min..max (see src/plan/autoscale.ts).
 */
const autoscale = z.strictObject({
  min: z.number().int().min(0).max(100).default(1),
  max: z.number().int().min(1).max(100),
  /** Queued tasks one replica should have to itself: replicas = ceil(backlog / targetBacklog). */
  targetBacklog: z.number().positive('expected a number of tasks above 0'),
  /** Scale down only this long after the last change, to the most replicas the backlog asked for during it. */
  cooldown: duration.default('5m'),
  /** Scale up no sooner than this after the last change (0s: as soon as the backlog asks). */
  upCooldown: duration.default('0s'),
  /** How often the backlog is read. */
  interval: duration.default('10s'),
  /** Where the backlog is read: a Prometheus text gauge served by one of the version's services. */
  metrics: z.strictObject({
    /** The service serving the metrics (default: the one with http: true); reached on its port over the app's network. */
    service: z.string().optional(),
    path: z.string().regex(/^\/[^\s]*$/, 'expected a path like /metrics').default('/metrics'),
    /** The gauge: the crawler's API serves crawler_tasks_backlog (stream pending + lag). */
    gauge: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'expected a Prometheus metric name').default('crawler_tasks_backlog'),
    /** A declared secret sent as `Authorization: Bearer <value>` (the crawler's /metrics needs api_token). */
    bearer: secretName.optional(),
  }).default({ path: '/metrics', gauge: 'crawler_tasks_backlog' }),
});

/** The controller's own service is `<app>-<version>-autoscaler`. */
export const AUTOSCALER_SERVICE = 'autoscaler';

const hstsMaxAge = z.number().int().min(0).max(63_072_000).optional();

/** tls.email: what depl.yaml accepts as the ACME account's contact address (`depl init --tls-email` checks the same). */
export const contactEmail = z.email('expected an e-mail address');

/** ACME (RFC 8555): Let's Encrypt by default; `letsencrypt-staging` or any https directory URL. */
const acmeTls = z.strictObject({
  mode: z.literal('acme'),
  /** Contact address the CA writes to about expiring certificates and problems. Optional in RFC 8555 (7.3). */
  email: contactEmail.optional(),
  directory: z
    .string()
    .refine((v) => v === 'letsencrypt' || v === 'letsencrypt-staging' || /^https:\/\/[^\s/]+(\/\S*)?$/.test(v), 'expected "letsencrypt", "letsencrypt-staging" or an https:// ACME directory URL')
    .default('letsencrypt'),
  /** PEM file of the CA that signed the directory's own HTTPS certificate (a private ACME server). */
  caBundle: relativeOrAbsolutePath.optional(),
  /**
   * http-01: one certificate per host, answered by the edge; dns-01: one wildcard `*.<domain>` through Designate.
   * Absent: see acmeChallenge (DNS-01 in the project's zone with the zero-config domain, else HTTP-01).
   */
  challenge: z.enum(['http-01', 'dns-01']).optional(),
  /** For dns-01 when the provider is not OpenStack: the cloud in clouds.yaml whose Designate holds the zone. */
  dnsCloud: z.string().min(1).optional(),
  hstsMaxAge,
  /** Certificates with less than this left are renewed (by depl commands and by the renewal task on the cluster). */
  renewBefore: z.string().regex(/^\d+(s|m|h|d)$/, 'expected a duration like 30d').optional(),
  /** How often the renewal task on the cluster looks at the certificates (sooner when one becomes due). */
  renewEvery: z.string().regex(/^\d+(s|m|h|d)$/, 'expected a duration like 12h').optional(),
});

export type AcmeChallenge = 'http-01' | 'dns-01';

/**
 * The ACME challenge `tls:` asks for, or its default: DNS-01 when depl keeps the domain's records in the project's
 * Designate zone (provider.dns, the zero-config domain: one wildcard for every version, answered in the zone
 * node-up already writes to), else HTTP-01. So `tls: { mode: acme, email: ... }` keeps DNS-01 on that zone.
 */
export function acmeChallenge(tls: { challenge?: AcmeChallenge | undefined }, provider: { type: string; dns?: { zone: string } | undefined }): AcmeChallenge {
  return tls.challenge ?? (provider.type === 'openstack' && provider.dns !== undefined ? 'dns-01' : 'http-01');
}

/** A certificate chain and key the institution handed out, installed as they are. */
const filesTls = z.strictObject({
  mode: z.literal('files'),
  /** PEM: the certificate first, then its intermediates. */
  cert: relativeOrAbsolutePath,
  key: relativeOrAbsolutePath,
  hstsMaxAge,
});

const offTls = z.strictObject({ mode: z.literal('off') });

export const tlsSchema = z.discriminatedUnion('mode', [acmeTls, filesTls, offTls]);

export const configSchema = z
  .strictObject({
    app: named(checkAppName, 'app name'),
    domain: named(checkDomainName, 'domain'),
    provider: z.discriminatedUnion('type', [localProvider, openstackProvider]).default({ type: 'local', nodes: 3, subnet: '192.168.77.0/24', image: 'docker' }),
    ssh: z.strictObject({
      user: z.string().regex(/^[a-z_][a-z0-9_-]*$/, 'expected a Unix user name').default('root'),
      key: plainPath.default('.depl/id_ed25519'),
      port: z.number().int().min(1).max(65535).default(22),
    }).default({ user: 'root', key: '.depl/id_ed25519', port: 22 }),
    /**
     * How node-up forms the swarm on the nodes: `ssh` (its own steps over SSH) or `ansible` (ansible/bootstrap.yml,
     * run with ansible-playbook on this machine and the inventory node-up writes). Both reach the same swarm.
     */
    bootstrap: z.enum(['ssh', 'ansible']).default('ssh'),
    images: z.record(z.string(), z.string().min(1)).default({}),
    registry: z.strictObject({ url: z.string().min(1) }).optional(),
    services: z.record(named(checkServiceName, 'service name'), service).refine((s) => Object.keys(s).length > 0, 'expected at least one service'),
    accessories: z.record(named(checkServiceName, 'accessory name'), accessory).default({}),
    /**
     * Secrets the app uses, by name. Their values never come from this file: they come from the environment
     * (DEPL_SECRET_<NAME>) or the local secrets file (.depl/secrets, 0600), and reach the services as Docker
     * Swarm secrets at /run/secrets/<name>.
     */
    secrets: z.array(secretName).default([]),
    /** The app's overlay network: IPsec-encrypted where the nodes' kernels support it ("auto"), always, or never. */
    network: z.strictObject({
      encrypted: z.union([z.literal('auto'), z.boolean()]).default('auto'),
    }).default({ encrypted: 'auto' }),
    /** The JSON document mounted in every service at /run/depl/config.json (DEPL_CONFIG_FILE names it). */
    config: z.record(z.string(), z.unknown()).default({}),
    /** Services scaled on their queue's backlog, by service name. */
    autoscale: z.record(z.string(), autoscale).default({}),
    /** HTTPS at the edge. Absent: off for the local provider, ACME with Let's Encrypt otherwise (see plan/tls/certificates.ts). */
    tls: tlsSchema.optional(),
    /**
     * The release phase (Heroku's, Fly's release_command): `command` runs once per install as a one-off job in the
     * swarm with the new version's spec of `service` (its image, config, secrets, env and network), after the
     * accessories run and before any of the version's services starts. A failure (or `timeout`) stops the
     * install and leaves the live version as it was. For migrations: what it changed is not undone by depl.
     */
    release: z.strictObject({
      service: z.string(),
      command,
      timeout: duration.refine((v) => !/^0+(ms|s|m|h)$/.test(v), 'expected a duration above 0, like 10m').default('10m'),
    }).optional(),
    /** The operator's hooks (.depl/hooks): one still running after `timeout` is stopped, and fails. */
    hooks: z.strictObject({ timeout: duration.default('10m') }).default({ timeout: '10m' }),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.provider.type === 'local' && cfg.provider.image === 'cloud' && cfg.ssh.user === 'root') {
      ctx.addIssue({ code: 'custom', path: ['ssh', 'user'], message: 'local nodes with provider.image: cloud take no root login (as on Nectar): set ssh.user: ubuntu' });
    }
    for (const [name, svc] of Object.entries(cfg.services)) {
      const sources = [svc.build, svc.from, svc.image].filter((x) => x !== undefined).length;
      if (sources !== 1) {
        ctx.addIssue({ code: 'custom', path: ['services', name], message: 'expected exactly one of "build", "from" or "image"' });
      }
      if (svc.from !== undefined && !(svc.from in cfg.services)) {
        ctx.addIssue({ code: 'custom', path: ['services', name, 'from'], message: `no service named "${svc.from}" (have: ${Object.keys(cfg.services).join(', ')})` });
      }
      if (svc.http && svc.port === undefined) {
        ctx.addIssue({ code: 'custom', path: ['services', name, 'port'], message: 'expected a port for a service with http: true' });
      }
      if (svc.node !== undefined && svc.volume === undefined) {
        ctx.addIssue({ code: 'custom', path: ['services', name, 'node'], message: 'pins a service with a volume: only with volume:' });
      }
      if (svc.volume !== undefined && svc.replicas > 1) {
        ctx.addIssue({ code: 'custom', path: ['services', name, 'replicas'], message: 'a service with a volume runs one task (its data files cannot be shared): expected 1' });
      }
      if (svc.volume !== undefined && name in cfg.autoscale) {
        ctx.addIssue({ code: 'custom', path: ['autoscale', name], message: 'a service with a volume runs one task and is not autoscaled' });
      }
      if (svc.from !== undefined && cfg.services[svc.from]?.from !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['services', name, 'from'], message: `"${svc.from}" itself uses "from"; point at the service that builds` });
      }
    }
    if (cfg.release !== undefined && !(cfg.release.service in cfg.services)) {
      ctx.addIssue({ code: 'custom', path: ['release', 'service'], message: `no service named "${cfg.release.service}" whose image and settings the release command runs with (have: ${Object.keys(cfg.services).join(', ')})` });
    }
    for (const [name, acc] of Object.entries(cfg.accessories)) {
      const passwordSecret = acc.backup?.passwordSecret;
      if (passwordSecret !== undefined && !acc.secrets.includes(passwordSecret)) {
        ctx.addIssue({ code: 'custom', path: ['accessories', name, 'backup', 'passwordSecret'], message: `"${passwordSecret}" is not one of this accessory's secrets (have: ${acc.secrets.join(', ') || 'none'})` });
      }
      if (name in cfg.services) {
        ctx.addIssue({ code: 'custom', path: ['accessories', name], message: `"${name}" is also a service; names must be unique` });
      }
      if (RESERVED_ACCESSORY_NAMES.includes(name)) {
        ctx.addIssue({ code: 'custom', path: ['accessories', name], message: `"${name}" is reserved: an accessory's service is <app>-<accessory>, and ${cfg.app}-${name} is depl's own service; rename the accessory` });
      }
      if (acc.seed !== undefined && acc.perBranch === undefined) {
        ctx.addIssue({ code: 'custom', path: ['accessories', name, 'seed'], message: 'seeds a branch database: only with perBranch: database' });
      }
      if (acc.seed !== undefined && acc.perBranch === 'prefix') {
        ctx.addIssue({ code: 'custom', path: ['accessories', name, 'seed'], message: 'seeds a branch database: a key prefix (perBranch: prefix) has nothing to seed' });
      }
    }
    // a name resolves to one container set: an alias may not be another service's or accessory's name or alias
    const owners = new Map<string, string>();
    for (const name of [...Object.keys(cfg.services), ...Object.keys(cfg.accessories)]) owners.set(name.toLowerCase(), name);
    for (const [kind, entries] of [['services', cfg.services], ['accessories', cfg.accessories]] as const) {
      for (const [name, entry] of Object.entries(entries)) {
        for (const [i, alias] of entry.aliases.entries()) {
          const owner = owners.get(alias.toLowerCase());
          if (owner !== undefined && owner !== name) ctx.addIssue({ code: 'custom', path: [kind, name, 'aliases', i], message: `"${alias}" already names ${owner} (names are compared without case, as DNS does)` });
          else owners.set(alias.toLowerCase(), name);
        }
      }
    }
    for (const [kind, entries] of [['services', cfg.services], ['accessories', cfg.accessories]] as const) {
      for (const [name, entry] of Object.entries(entries)) {
        for (const secret of Object.keys(entry.secretPaths)) {
          if (!entry.secrets.includes(secret)) ctx.addIssue({ code: 'custom', path: [kind, name, 'secretPaths', secret], message: `"${secret}" is not in this ${kind === 'services' ? 'service' : 'accessory'}'s secrets: list` });
        }
      }
    }
    for (const [name, acc] of Object.entries(cfg.accessories)) {
      for (const [i, other] of acc.dependsOn.entries()) {
        if (!(other in cfg.accessories) || other === name) ctx.addIssue({ code: 'custom', path: ['accessories', name, 'dependsOn', i], message: `"${other}" is not another accessory (have: ${Object.keys(cfg.accessories).join(', ')})` });
      }
    }
    const declared = new Set(cfg.secrets);
    if (declared.size !== cfg.secrets.length) ctx.addIssue({ code: 'custom', path: ['secrets'], message: 'lists a secret twice' });
    for (const [kind, entries] of [['services', cfg.services], ['accessories', cfg.accessories]] as const) {
      for (const [name, entry] of Object.entries(entries)) {
        for (const [i, secret] of entry.secrets.entries()) {
          if (!declared.has(secret)) {
            ctx.addIssue({ code: 'custom', path: [kind, name, 'secrets', i], message: `"${secret}" is not declared in the top-level secrets: list (have: ${cfg.secrets.join(', ') || 'none'})` });
          }
        }
      }
    }
    for (const [kind, entries] of [['services', cfg.services], ['accessories', cfg.accessories]] as const) for (const [name, svc] of Object.entries(entries)) {
      for (const key of Object.keys(svc.env)) {
        if (looksSecret(key)) {
          ctx.addIssue({ code: 'custom', path: [kind, name, 'env', key], message: 'looks like a secret; environment values show in `docker service inspect`. Declare it under secrets: and read /run/secrets/<name> instead' });
        }
      }
    }
    for (const [name, policy] of Object.entries(cfg.autoscale)) {
      const at = ['autoscale', name];
      if (!(name in cfg.services)) {
        ctx.addIssue({ code: 'custom', path: at, message: `no service named "${name}" to scale (have: ${Object.keys(cfg.services).join(', ')})` });
        continue;
      }
      if (policy.min > policy.max) ctx.addIssue({ code: 'custom', path: [...at, 'min'], message: `min ${policy.min} is above max ${policy.max}` });
      const source = policy.metrics.service ?? Object.entries(cfg.services).find(([, s]) => s.http)?.[0];
      if (source === undefined) {
        ctx.addIssue({ code: 'custom', path: [...at, 'metrics', 'service'], message: 'name the service that serves the backlog gauge (no service has http: true)' });
      } else if (!(source in cfg.services)) {
        ctx.addIssue({ code: 'custom', path: [...at, 'metrics', 'service'], message: `no service named "${source}" (have: ${Object.keys(cfg.services).join(', ')})` });
      } else if (cfg.services[source]!.port === undefined) {
        ctx.addIssue({ code: 'custom', path: [...at, 'metrics', 'service'], message: `service "${source}" has no port to read ${policy.metrics.path} from: set services.${source}.port` });
      }
      const secret = policy.metrics.bearer;
      if (secret !== undefined && !declared.has(secret)) {
        ctx.addIssue({ code: 'custom', path: [...at, 'metrics', 'bearer'], message: `"${secret}" is not declared in the top-level secrets: list (have: ${cfg.secrets.join(', ') || 'none'})` });
      }
    }
    for (const reserved of [AUTOSCALER_SERVICE, AUTOSCALER_GATE_SERVICE]) {
      if (Object.keys(cfg.autoscale).length > 0 && reserved in cfg.services) {
        ctx.addIssue({ code: 'custom', path: ['services', reserved], message: `"${reserved}" is the name of the autoscale controller's ${reserved === AUTOSCALER_SERVICE ? 'service' : 'engine gate'}; rename this service` });
      }
    }
    if (cfg.provider.type === 'openstack') {
      const poolOf = new Map<string, string>();
      for (const [poolName, p] of Object.entries(cfg.provider.pools)) {
        // checked here, not as the record's key schema: zod reports a bad key only as "Invalid key in record"
        if (!/^[a-z][a-z0-9-]{0,15}$/.test(poolName)) {
          ctx.addIssue({ code: 'custom', path: ['provider', 'pools', poolName], message: `expected a pool name of lower-case letters, digits and "-", starting with a letter, at most 16 characters: ${JSON.stringify(poolName)}` });
        }
        for (const [i, service] of p.services.entries()) {
          const at = ['provider', 'pools', poolName, 'services', i];
          if (!(service in cfg.services)) {
            ctx.addIssue({ code: 'custom', path: at, message: `no service named "${service}" (have: ${Object.keys(cfg.services).join(', ')})` });
          } else if (poolOf.has(service)) {
            ctx.addIssue({ code: 'custom', path: at, message: `"${service}" already runs on pool "${poolOf.get(service)}": a service runs on one pool` });
          } else if (cfg.services[service]!.volume !== undefined) {
            ctx.addIssue({ code: 'custom', path: at, message: `"${service}" has a volume and stays on its volume's node: it cannot run on a pool` });
          } else {
            poolOf.set(service, poolName);
          }
        }
        if (p.autoscale !== undefined) {
          const at = ['provider', 'pools', poolName, 'autoscale'];
          if (p.count.min === p.count.max) ctx.addIssue({ code: 'custom', path: [...at], message: `the pool's count is fixed at ${p.count.min}: give it a range like ${p.count.min}..${p.count.min + 3} to autoscale it` });
          if (!p.services.some((service) => service in cfg.autoscale)) {
            ctx.addIssue({ code: 'custom', path: [...at], message: `none of the pool's services (${p.services.join(', ')}) is under autoscale:, whose controller reads the backlog and scales the pool` });
          }
          if (!declared.has(p.autoscale.credential)) {
            ctx.addIssue({ code: 'custom', path: [...at, 'credential'], message: `"${p.autoscale.credential}" is not declared in the top-level secrets: list (have: ${cfg.secrets.join(', ') || 'none'})` });
          }
        }
      }
    }
    for (const issue of inlineSecrets(cfg.config, ['config'])) ctx.addIssue({ code: 'custom', ...issue });
    const dnsZone = cfg.provider.type === 'openstack' ? cfg.provider.dns?.zone : undefined;
    if (dnsZone !== undefined && `${cfg.domain}.` !== dnsZone && !`${cfg.domain}.`.endsWith(`.${dnsZone}`)) {
      ctx.addIssue({ code: 'custom', path: ['domain'], message: `"${cfg.domain}" is not a name under provider.dns.zone "${dnsZone}": node-up can only keep records of names in that zone (e.g. ${cfg.app}.${dnsZone.slice(0, -1)})` });
    }
    const tls = cfg.tls;
    if (tls?.mode === 'acme' && tls.challenge === 'dns-01' && cfg.provider.type !== 'openstack' && tls.dnsCloud === undefined) {
      ctx.addIssue({ code: 'custom', path: ['tls', 'dnsCloud'], message: 'dns-01 needs an OpenStack cloud with Designate: use the openstack provider or name a cloud from clouds.yaml here' });
    }
    if (tls?.mode === 'acme' && acmeChallenge(tls, cfg.provider) === 'http-01' && tls.dnsCloud !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['tls', 'dnsCloud'], message: 'only used with challenge: dns-01' });
    }
  });

/**
 * The config: section becomes a swarm config, readable by anyone with `docker config inspect`, and is
 * mounted in every container; a secret value in it is refused (by key name, and credentials in URLs).
 * Keys like `apiTokenFile` point at /run/secrets instead.
 */
function inlineSecrets(value: unknown, path: (string | number)[]): { path: (string | number)[]; message: string }[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => inlineSecrets(item, [...path, i]));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([key, item]) => {
      const at = [...path, key];
      if (looksSecret(key) && item !== null && item !== '' && typeof item !== 'object') {
        return [{ path: at, message: `looks like a secret, and config: is readable with \`docker config inspect\` on the cluster. Declare it under secrets: and point at its file instead (e.g. ${key}File: /run/secrets/<name>)` }];
      }
      return inlineSecrets(item, at);
    });
  }
  if (typeof value === 'string' && /^[a-z][a-z0-9+.-]*:\/\/[^/\s@]*:[^/\s@]+@/i.test(value)) {
    return [{ path, message: 'has a password in its URL; keep it out of depl.yaml: declare a secret and give the service its file (e.g. redisPasswordFile: /run/secrets/redis_password)' }];
  }
  return [];
}

export type DeplConfig = z.infer<typeof configSchema>;
export type ServiceConfig = DeplConfig['services'][string];
export type AccessoryConfig = DeplConfig['accessories'][string];
export type LocalProviderConfig = z.infer<typeof localProvider>;
type TlsSection = z.infer<typeof tlsSchema>;
/** `tls:` as it applies (src/plan/tls/certificates.ts tlsSettings): defaults filled in, the ACME challenge decided. */
export type TlsConfig = Exclude<TlsSection, { mode: 'acme' }> | (Extract<TlsSection, { mode: 'acme' }> & { challenge: AcmeChallenge });
export type AutoscaleConfig = DeplConfig['autoscale'][string];
export type ReleasePhaseConfig = NonNullable<DeplConfig['release']>;
export type OpenStackProviderConfig = z.infer<typeof openstackProvider>;
export type PoolConfig = OpenStackProviderConfig['pools'][string];
