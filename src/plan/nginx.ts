import { UserError } from '../errors.js';
import { EDGE_LUA_MODULE } from './edge-lua.js';
import { fnv1a } from './edge-routing.js';
import { checkAppName } from '../names.js';
import { acmeChallengeLines, assertTlsRender, hstsLines, httpsRedirectLines, httpsServers, tlsHttpLines, type EdgeTlsRender } from './tls/nginx.js';

/**
 * The edge's nginx configuration. It holds no version, host or weight: those are in the routing table
 * (edge-routing.ts) that the Lua code (edge-lua.ts) reads at request time, so installing a version, a switch,
 * a rollback and every canary change leave this file alone. It changes, and nginx reloads gracefully, only
 * for what nginx cannot take live: listen address, paths, resolver, the routing code itself (and, later,
 * certificates). Everything that varies between edges is an option, so the same text runs in the swarm's edge
 * container and in the loopback nginx of the integration tests.
 */
export interface NginxRenderOptions {
  /** Where the edge listens: `80` in the edge container; a loopback address and a free port in tests. */
  listen: { port: number; address?: string };
  /**
   * A DNS server for upstream service names: Docker's embedded DNS `127.0.0.11` inside the edge container.
   * Without one, upstreams must be addresses (the loopback edge of the tests).
   */
  resolver?: string;
  /** How long resolved task addresses are trusted: short, so new tasks are found soon after an update. */
  resolverValidSeconds?: number;
  paths: {
    pid: string;
    accessLog: string;
    errorLog: string;
    /** A directory nginx may create its temp directories in. */
    temp: string;
    /** One app's edge: the routing table depl writes (edge-routing.ts); read at start and whenever it changes. */
    routing?: string;
    /**
     * The cluster's edge, instead of `routing`: the app list (src/plan/edge-apps.ts) and the folder of the apps'
     * routing tables (`<routes>/<app>`), read the same way.
     */
    apps?: string;
    routes?: string;
    /** Where Debian's nginx modules are (ndk_http_module.so, ngx_http_lua_module.so). */
    modules: string;
  };
  workerProcesses?: number | 'auto';
  /** How often the edge looks at the routing file by itself (depl also asks it to, see edge-lua.ts). */
  pollSeconds?: number;
  /** HTTPS and ACME challenges (src/plan/tls/nginx.ts); absent: plain http only. */
  tls?: EdgeTlsRender;
  /** Who the probe answers (IPv4 addresses or networks); default PROBE_ALLOW. */
  probeAllow?: readonly string[];
}

/**
 * The probe answers loopback only: inside the edge's container that is the edge itself, nothing on the
 * node, the swarm's overlays or Docker's bridges (whose private ranges other tenants' containers share).
 * Whoever asks does so from inside the container's network: depl on the manager with nsenter (edgeProbeCommand
 * in src/plan/edge-service.ts), the renewal task with an exec through the Engine API; a local edge in tests
 * from this machine. The same list for every edge, so depl and the renewal task render the same configuration.
 */
export const PROBE_ALLOW = ['127.0.0.0/8'] as const;

export interface EdgeSettings {
  app: string;
}

/**
 * The settings an app's change renders the edge with: its own on an app's edge; on the cluster's edge the same
 * for every app (CLUSTER_EDGE_SETTINGS), so two apps' changes in turn never reload it for a name in a comment.
 */
export function edgeSettingsFor(render: Pick<NginxRenderOptions, 'paths'>, app: string): EdgeSettings {
  return render.paths.apps !== undefined ? CLUSTER_EDGE_SETTINGS : { app };
}

/** Rendered in the cluster edge's nginx.conf where an app's edge names its app (see docs/ARCHITECTURE.md). */
export const CLUSTER_EDGE_SETTINGS: EdgeSettings = { app: 'cluster' };

/** The cookie a client (or the app) may set to pin itself to one side of a canary split. */
export const CANARY_COOKIE = 'depl_client';
/**
 * Answered for the Host PROBE_HOST: "<config generation> <routing generation>" (the routing one after
 * re-reading the routing file; see edge-lua.ts).
 */
export const CONFIG_PROBE_PATH = '/_depl/config';
export const PROBE_HOST = 'depl-edge-probe.invalid';

/** The probe's path: on the cluster's edge it names the app whose routing generation it reports. */
export function probePath(app?: string): string {
  return app === undefined ? CONFIG_PROBE_PATH : `${CONFIG_PROBE_PATH}?app=${app}`;
}

/**
 * The probe asked from inside the edge's container, over its loopback (bash's /dev/tcp: no curl in the
 * image), the only address the probe answers (PROBE_ALLOW). Prints the raw HTTP/1.0 answer.
 */
export function probeFromInsideCommand(port: number): string[] {
  return ['bash', '-c', PROBE_SCRIPT, 'depl-probe', String(port), CONFIG_PROBE_PATH, PROBE_HOST];
}

/** bash: `$1` port, `$2` path, `$3` Host header. */
export const PROBE_SCRIPT = 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n" "$2" "$3" >&3 && cat <&3';

/** Status and body of a raw HTTP answer (probeFromInsideCommand's output). */
export function parseRawHttpAnswer(text: string): { status: number; body: string } {
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  const split = text.indexOf('\r\n\r\n');
  return { status, body: split < 0 ? '' : text.slice(split + 4) };
}
export const VERSION_HEADER = 'X-Depl-Version';
export const DEBIAN_NGINX_MODULES = '/usr/lib/nginx/modules';
const ROUTING_DICT_SIZE = '8m';

export function renderNginxConfig(settings: EdgeSettings, options: NginxRenderOptions): string {
  must(checkAppName(settings.app).ok, `app name "${settings.app}" is not a DNS label`);
  assertOptions(options);
  const generation = configGeneration(settings, options);
  const listen = listenDirective(options);
  const lines: string[] = [
    `# Generated by depl for ${options.paths.apps !== undefined ? "the cluster's edge" : `app ${settings.app}`}; do not edit. Versions, live and canary are not in this file:`,
    `# they are in ${options.paths.routing ?? `${options.paths.routes}/<app> for the apps ${options.paths.apps} lists`}, read at request time (see src/plan/edge-lua.ts).`,
    `# generation ${generation}`,
    `load_module ${options.paths.modules}/ndk_http_module.so;`,
    `load_module ${options.paths.modules}/ngx_http_lua_module.so;`,
    `worker_processes ${options.workerProcesses ?? 'auto'};`,
    `pid ${options.paths.pid};`,
    `error_log ${options.paths.errorLog} warn;`,
    '',
    'events {',
    '  worker_connections 4096;',
    '}',
    '',
    'http {',
    '  server_tokens off;',
    '  default_type application/octet-stream;',
    '  sendfile on;',
    '  tcp_nodelay on;',
    '  keepalive_timeout 65s;',
    '  keepalive_requests 10000;',
    '  # When a reload (settings or certificates only) retires old workers, they close keep-alive connections',
    '  # after their last response; lingering reads and drops a request that raced that close, so the client',
    '  # sees a clean close rather than a reset. Bounded: the log line waits for it.',
    '  lingering_close always;',
    '  lingering_timeout 1s;',
    '  client_max_body_size 10m;',
    `  client_body_temp_path ${options.paths.temp}/client_body;`,
    `  proxy_temp_path ${options.paths.temp}/proxy;`,
    `  fastcgi_temp_path ${options.paths.temp}/fastcgi;`,
    `  uwsgi_temp_path ${options.paths.temp}/uwsgi;`,
    `  scgi_temp_path ${options.paths.temp}/scgi;`,
    '',
    '  # One JSON object per request; `depl stats` reads these lines (src/plan/stats.ts).',
    '  log_format depl_json escape=json \'{"msec":$msec,"host":"$host","version":"$depl_version",\'',
    '    \'"status":$status,"request_time":$request_time,"upstream_time":"$upstream_response_time",\'',
    '    \'"upstream_status":"$upstream_status","upstream_addr":"$upstream_addr",\'',
    '    \'"method":"$request_method","uri":"$uri","bytes":$body_bytes_sent,"request_id":"$request_id"}\';',
    `  access_log ${options.paths.accessLog} depl_json;`,
    '',
  ];
  if (options.resolver !== undefined) {
    lines.push(
      '  # Service names resolve to the tasks on the overlay network (dnsrr); re-resolved often so that',
      '  # a rolling update is followed within seconds.',
      `  resolver ${options.resolver} valid=${options.resolverValidSeconds ?? 5}s ipv6=off;`,
      '  resolver_timeout 2s;',
      '',
    );
  }
  lines.push(
    '  proxy_http_version 1.1;',
    '  proxy_set_header Connection "";',
    '  proxy_set_header Host $host;',
    '  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    '  proxy_set_header X-Forwarded-Proto $scheme;',
    '  proxy_set_header X-Request-Id $request_id;',
    '  proxy_connect_timeout 2s;',
    '  proxy_read_timeout 60s;',
    '  # A task that stops mid-update refuses or drops the connection: try another task instead of failing',
    '  # the request (idempotent requests only, bounded in tries and time).',
    '  proxy_next_upstream error timeout http_502 http_503 http_504;',
    '  proxy_next_upstream_tries 3;',
    '  proxy_next_upstream_timeout 10s;',
    '',
    ...tlsHttpLines(options.tls),
    '  # The routing, shared by all workers and changed without a reload (src/plan/edge-lua.ts).',
    `  lua_shared_dict depl_routing ${ROUTING_DICT_SIZE};`,
    '  init_by_lua_block {',
    ...EDGE_LUA_MODULE.trim().split('\n').map((line) => (line === '' ? '' : `    ${line}`)).map((line) => line.replace(/^ {4}return M$/, '    package.loaded.depl_edge = M')),
    `    M.init({ ${routingSources(options.paths)}, poll = ${options.pollSeconds ?? 0.05}, config = "${generation}" })`,
    '  }',
    '  init_worker_by_lua_block {',
    '    require("depl_edge").init_worker()',
    '  }',
    '',
    `  # depl asks here what the edge runs and serves, after making it re-read the routing file.`,
    '  server {',
    `    listen ${listen};`,
    `    server_name ${PROBE_HOST};`,
    '    set $depl_version "";',
    `    location = ${CONFIG_PROBE_PATH} {`,
    ...(options.probeAllow ?? PROBE_ALLOW).map((network) => `      allow ${network};`),
    '      deny all;',
    '      content_by_lua_block { require("depl_edge").report() }',
    '    }',
    '    location / {',
    '      return 404;',
    '    }',
    '  }',
    '',
    '  # Every other host: <domain> (live, or a canary split), <version>.<domain>, or 404 for anything else.',
    '  server {',
    `    listen ${listen} default_server;`,
    '    server_name _;',
    ...routed(options.tls, false),
    '  }',
    ...httpsServers(options.tls, options.listen.address, routed(options.tls, true)),
    '}',
    '',
  );
  return lines.join('\n');
}

/** What serves a request: the routing location (behind https, or redirecting to it), and ACME challenges. */
function routed(tls: EdgeTlsRender | undefined, secure: boolean): string[] {
  return [
    '    set $depl_version "";',
    '    set $depl_upstream "";',
    '    set $depl_set_cookie "";',
    ...(secure ? [] : acmeChallengeLines(tls)),
    '    location / {',
    ...(secure ? [] : httpsRedirectLines(tls)),
    '      access_by_lua_block { require("depl_edge").route() }',
    '      proxy_pass $depl_upstream;',
    `      add_header ${VERSION_HEADER} $depl_version always;`,
    '      add_header Set-Cookie $depl_set_cookie;',
    ...(secure ? hstsLines(tls) : []),
    '    }',
  ];
}

/** A short id of the configuration (and the routing code in it); the edge reports it at CONFIG_PROBE_PATH. */
export function configGeneration(settings: EdgeSettings, options: NginxRenderOptions): string {
  return fnv1a(JSON.stringify({ settings, options, lua: EDGE_LUA_MODULE }));
}

/** Where app `app`'s routing table is: the one table of an app's own edge, or its file among the cluster edge's. */
export function appRoutingPath(paths: NginxRenderOptions['paths'], app: string): string {
  return paths.routing ?? `${paths.routes}/${app}`;
}

/** The Lua's init arguments naming the routing it reads (the paths were checked by assertOptions). */
function routingSources(paths: NginxRenderOptions['paths']): string {
  return paths.routing !== undefined ? `file = "${paths.routing}"` : `apps = "${paths.apps}", routes = "${paths.routes}"`;
}

function listenDirective(options: NginxRenderOptions): string {
  return options.listen.address !== undefined ? `${options.listen.address}:${options.listen.port}` : String(options.listen.port);
}

function assertOptions(options: NginxRenderOptions): void {
  const { port, address } = options.listen;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UserError(`edge listen port ${port} is not a port number`, undefined, 'EDGE_OPTIONS_INVALID');
  if (address !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) throw new UserError(`edge listen address "${address}" is not an IPv4 address`, undefined, 'EDGE_OPTIONS_INVALID');
  if (options.resolver !== undefined && !/^\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?$/.test(options.resolver)) {
    throw new UserError(`resolver "${options.resolver}" is not an IPv4 address`, undefined, 'EDGE_OPTIONS_INVALID');
  }
  const { routing, apps, routes } = options.paths;
  if ((routing !== undefined) === (apps !== undefined || routes !== undefined) || (apps === undefined) !== (routes === undefined)) {
    throw new UserError('the edge reads either one routing table (paths.routing) or an app list and a folder of tables (paths.apps and paths.routes)', undefined, 'EDGE_OPTIONS_INVALID');
  }
  for (const [what, path] of Object.entries(options.paths)) {
    if (path === undefined) continue;
    if (!/^\/[A-Za-z0-9._/-]*$/.test(path)) throw new UserError(`edge ${what} path "${path}" must be absolute and contain only letters, digits, ".", "_", "-" and "/"`, undefined, 'EDGE_OPTIONS_INVALID');
  }
  const workers = options.workerProcesses;
  if (workers !== undefined && workers !== 'auto' && (!Number.isInteger(workers) || workers < 1)) {
    throw new UserError(`worker_processes ${workers} is not a positive whole number`, undefined, 'EDGE_OPTIONS_INVALID');
  }
  for (const network of options.probeAllow ?? []) {
    if (!/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(network)) throw new UserError(`probe allow "${network}" is not an IPv4 address or network`, undefined, 'EDGE_OPTIONS_INVALID');
  }
  assertTlsRender(options.tls);
  const poll = options.pollSeconds;
  if (poll !== undefined && !(Number.isFinite(poll) && poll >= 0.01 && poll <= 60)) throw new UserError(`routing poll interval ${poll}s is outside 0.01..60`, undefined, 'EDGE_OPTIONS_INVALID');
}

function must(ok: boolean, message: string): void {
  if (!ok) throw new UserError(message, undefined, 'EDGE_OPTIONS_INVALID');
}
