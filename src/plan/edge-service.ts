import { quote, shellLine, type Argv } from './shell.js';
import { LABELS, type ServiceSpec, type UpdatePolicy } from './services.js';
import { CONFIG_PROBE_PATH, DEBIAN_NGINX_MODULES, PROBE_HOST, PROBE_SCRIPT, type NginxRenderOptions } from './nginx.js';
import { appStateDir, edgeServiceName } from './names.js';
import { parseFileTexts, PRINT_FILES } from './file-texts.js';

/**
 * The edge as data: its swarm service, where its files live, and the commands that check, reload and list
 * nginx inside its container. src/apply/edge/ runs them.
 */
export function edgeDir(app: string): string {
  return `${appStateDir(app)}/edge`;
}

export { edgeServiceName };

/** The running container of an edge service (`<app>-edge`, or the cluster's `depl_edge`) on the manager. */
export function edgeContainerQuery(service: string): Argv {
  return ['docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${service}`, '--filter', 'status=running'];
}

/** Exit code of edgeProbeCommand when the edge service has no running container on the node. */
export const EDGE_PROBE_NO_CONTAINER = 3;

/** Where the manager keeps the edge container it found (`pid netns id`), by edge service: under /run, gone at a reboot. */
export const EDGE_CONTAINER_CACHE_DIR = '/run/depl';

/**
 * The shell test that the cache line in "$cache" (`pid netns id`, written by edgeProbeCommand) still names the
 * running edge container: while that pid has that network namespace it is the same process, so the same container.
 * Sets $pid, $ns and $id.
 */
const CACHED_CONTAINER_VALID = '{ read -r pid ns id < "$cache" && [ -n "$id" ] && [ -n "$ns" ] && [ "$(readlink "/proc/$pid/ns/net")" = "$ns" ]; } 2>/dev/null';

/**
 * The probe of the edge service `service` asked on the manager inside the network of the edge's running container (found when
 * asked, so it works while a restart replaces the container): the probe answers nothing but that network's
 * loopback (src/plan/nginx.ts PROBE_ALLOW). nsenter enters the container's network namespace only, so the
 * node's own bash makes the request and the edge image needs no shell. Runs as root (depl's commands on a
 * node do). Prints the raw HTTP/1.0 answer; exits EDGE_PROBE_NO_CONTAINER without a running container.
 * The container's pid is kept in `cacheDir` with its network namespace and its id: while that process still has
 * that namespace it is the same container, and the two docker CLI calls (most of a probe's time) are skipped; the
 * next command that opens the edge reads the id from there (cachedEdgeContainerCommand) instead of asking the Engine.
 */
export function edgeProbeCommand(service: string, port = 80, cacheDir = EDGE_CONTAINER_CACHE_DIR, path = CONFIG_PROBE_PATH): Argv {
  const script = [
    'cache="$1/edge-container-$2"',
    `if ! ${CACHED_CONTAINER_VALID}; then`,
    `  id=$(${shellLine(edgeContainerQuery(service))} | head -n 1)`,
    `  [ -n "$id" ] || { echo "no running container of $2" >&2; exit ${EDGE_PROBE_NO_CONTAINER}; }`,
    '  pid=$(docker inspect --format "{{.State.Pid}}" "$id") || exit $?',
    '  ns=$(readlink "/proc/$pid/ns/net" 2>/dev/null) && [ -n "$ns" ] && mkdir -p "$1" && echo "$pid $ns $id" > "$cache.$$" && mv "$cache.$$" "$cache"',
    'fi',
    'shift 2',
    'exec nsenter --target "$pid" --net bash -c "$@"',
  ].join('\n');
  return ['sh', '-c', script, 'depl-edge-probe', cacheDir, service, PROBE_SCRIPT, 'depl-probe', String(port), path, PROBE_HOST];
}

/**
 * Prints the files named after the cache folder (PRINT_FILES: the edge's HTTPS settings, when asked for) and then
 * the id of the edge's running container as the last probe on the node found it (nothing when the cache no longer
 * names a running container): opening the edge costs this one command instead of it and an Engine API lookup.
 */
export function cachedEdgeContainerCommand(service: string, files: readonly string[], cacheDir = EDGE_CONTAINER_CACHE_DIR): Argv {
  const script = [
    'cache="$1/edge-container-$2"',
    'shift 2',
    PRINT_FILES,
    `if ${CACHED_CONTAINER_VALID}; then printf %s "$id"; fi`,
  ].join('\n');
  return ['sh', '-c', script, 'depl-edge-files', cacheDir, service, ...files];
}

/** What cachedEdgeContainerCommand printed: the files' texts and the cached container id (null: none, or not an id), or null when it cannot be split so. */
export function parseCachedEdgeContainer(printed: string, count: number): { texts: Array<string | null>; container: string | null } | null {
  const texts = parseFileTexts(printed, count);
  if (texts === null) return null;
  const last = printed.split('\0')[count]!.trim();
  return { texts, container: /^[0-9a-f]{12,64}$/.test(last) ? last : null };
}

/** How to run nginx, reload it, list its processes and reopen its logs inside the edge container `id`. */
export function edgeSiteCommands(id: string): { nginx: (args: readonly string[]) => Argv; reload: Argv; processes: Argv; reopenLogs: Argv } {
  return {
    nginx: (args) => ['docker', 'exec', id, 'nginx', ...args],
    reload: ['docker', 'kill', '--signal', 'HUP', id],
    processes: ['docker', 'top', id, '-o', 'pid,args'],
    reopenLogs: ['docker', 'kill', '--signal', 'USR1', id],
  };
}

/**
 * nginx as the swarm service `<app>-edge` on the node labelled depl.edge=true, port 80 published in host
 * mode (no routing mesh here), on the app's overlay network so Docker's DNS resolves version services,
 * reading its configuration from the bind-mounted edge directory; 443 too when tls: is on.
 */
export function planEdgeService(app: string, image: string, network: string, https = false): ServiceSpec {
  return nginxEdgeServiceSpec({ name: edgeServiceName(app), labels: { [LABELS.app]: app }, dir: edgeDir(app), image, networks: [network], https });
}

/**
 * An edge's nginx as a swarm service (an app's `<app>-edge`, or the cluster's `depl_edge`): on the node labelled
 * depl.edge=true, ports 80 (and 443 with HTTPS) published in host mode (no routing mesh here), on the networks
 * whose services it routes (Docker's DNS resolves them), its files bind-mounted at the same path.
 */
export function nginxEdgeServiceSpec(edge: { name: string; labels: Record<string, string>; dir: string; image: string; networks: readonly string[]; https: boolean }): ServiceSpec {
  const labels = { ...edge.labels, [EDGE_ROLE_LABEL]: 'edge' };
  // SIGQUIT is nginx's graceful shutdown; a host-mode port cannot be held by two tasks, so stop first.
  const policy: UpdatePolicy = { Parallelism: 1, Delay: 0, FailureAction: 'pause', Monitor: 5_000_000_000, Order: 'stop-first' };
  return {
    Name: edge.name,
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: edge.image,
        Command: ['nginx'],
        Args: ['-c', `${edge.dir}/nginx.conf`, '-g', 'daemon off;'],
        Labels: labels,
        StopGracePeriod: 30_000_000_000,
        StopSignal: 'SIGQUIT',
        Mounts: [{ Type: 'bind', Source: edge.dir, Target: edge.dir }],
      },
      RestartPolicy: { Condition: 'any', Delay: 1_000_000_000, MaxAttempts: 0, Window: 0 },
      Placement: { Constraints: ['node.labels.depl.edge==true'] },
      Networks: [...new Set(edge.networks)].map((Target) => ({ Target })),
    },
    Mode: { Replicated: { Replicas: 1 } },
    UpdateConfig: policy,
    RollbackConfig: policy,
    EndpointSpec: {
      Mode: 'dnsrr',
      Ports: [80, ...(edge.https ? [443] : [])].map((port) => ({ Protocol: 'tcp' as const, TargetPort: port, PublishedPort: port, PublishMode: 'host' as const })),
    },
  };
}

/**
 * nginx in an edge's container: Docker's DNS, its pid, logs and temp files in the container or its bind-mounted
 * folder `dir`, and the routing it reads (one app's table, or the cluster edge's app list and tables).
 */
export function edgeContainerRenderOptions(dir: string, tables: Pick<NginxRenderOptions['paths'], 'routing' | 'apps' | 'routes'>): NginxRenderOptions {
  return {
    listen: { port: 80 },
    resolver: '127.0.0.11',
    resolverValidSeconds: 5,
    paths: {
      pid: '/run/nginx.pid', accessLog: `${dir}/logs/access.log`, errorLog: `${dir}/logs/error.log`, temp: '/tmp',
      ...tables, modules: DEBIAN_NGINX_MODULES,
    },
    workerProcesses: 'auto',
  };
}

export const EDGE_ROLE_LABEL = 'depl.role';

/** The two modules the edge's configuration loads (src/plan/nginx.ts), which a stock nginx image lacks. */
export const EDGE_NGINX_MODULES = ['ndk_http_module', 'ngx_http_lua_module'] as const;

/** The exit code of edgeImageProbe when a module is missing (Docker's own failures are 125-127). */
export const EDGE_PROBE_MISSING_MODULE = 3;

/**
 * A shell line for the manager that looks into the image about to become the edge (a container created,
 * never started, so an image without a shell works too) for the Lua modules where the configuration loads
 * them: a stock image would otherwise restart in a loop until the wait for the edge gives up, saying
 * nothing about why. Exits 0, EDGE_PROBE_MISSING_MODULE, or Docker's code when the image cannot be had.
 */
export function edgeImageProbe(image: string, modulesDir: string): string {
  const copies = EDGE_NGINX_MODULES.map((m) => `${modulesDir}/${m}.so`).map((file) =>
    `docker cp "$id":${quote(file)} - >/dev/null 2>&1 || { echo ${quote(`no ${file}`)}; rc=${EDGE_PROBE_MISSING_MODULE}; }`);
  return [
    `id=$(${shellLine(['docker', 'create', '--network', 'none', '--entrypoint', 'nginx', image])}) || exit $?`,
    'rc=0',
    ...copies,
    'docker rm "$id" >/dev/null',
    'exit $rc',
  ].join('\n');
}

/** Makes the edge's directories on the node (before the service can bind-mount them). */
export function edgeDirsCommand(app: string): Argv {
  return ['mkdir', '-p', `${edgeDir(app)}/logs`];
}
