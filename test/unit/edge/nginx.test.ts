import { describe, expect, it } from 'vitest';
import { EDGE_LUA_MODULE } from '../../../src/plan/edge-lua.js';
import { appRoutingPath, CONFIG_PROBE_PATH, configGeneration, edgeSettingsFor, probePath, renderNginxConfig, type NginxRenderOptions } from '../../../src/plan/nginx.js';

const swarm: NginxRenderOptions = {
  listen: { port: 80 },
  resolver: '127.0.0.11',
  paths: {
    pid: '/run/nginx.pid', accessLog: '/var/lib/depl/shop/edge/logs/access.log', errorLog: '/var/lib/depl/shop/edge/logs/error.log', temp: '/tmp',
    routing: '/var/lib/depl/shop/edge/routing', modules: '/usr/lib/nginx/modules',
  },
};
const settings = { app: 'shop' };

describe('renderNginxConfig', () => {
  it('holds no version, host or weight: those are read at request time from the routing table', () => {
    const text = renderNginxConfig(settings, swarm);
    expect(text.match(/server_name .*;/g)).toEqual(['server_name depl-edge-probe.invalid;', 'server_name _;']);
    expect(text).not.toContain('split_clients');
    expect(text).toContain('load_module /usr/lib/nginx/modules/ndk_http_module.so;');
    expect(text).toContain('load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;');
    expect(text).toContain('lua_shared_dict depl_routing 8m;');
    expect(text).toContain('M.init({ file = "/var/lib/depl/shop/edge/routing", poll = 0.05, config = "');
    expect(text).toContain('init_worker_by_lua_block {\n    require("depl_edge").init_worker()\n  }');
  });

  it('routes every host in one default server, naming the version in a header and the access log', () => {
    const text = renderNginxConfig(settings, swarm);
    const server = text.slice(text.indexOf('  server {\n    listen 80 default_server;'));
    expect(server).toContain('access_by_lua_block { require("depl_edge").route() }');
    expect(server).toContain('proxy_pass $depl_upstream;');
    expect(server).toContain('add_header X-Depl-Version $depl_version always;');
    expect(server).toContain('add_header Set-Cookie $depl_set_cookie;');
    expect(text.match(/server \{/g)).toHaveLength(2);
  });

  it('answers the probe only on the edge container\'s own loopback: no private network (other tenants share them)', () => {
    const text = renderNginxConfig(settings, swarm);
    const probe = text.slice(text.indexOf(`location = ${CONFIG_PROBE_PATH} {`));
    expect(probe.slice(0, probe.indexOf('}') + 1)).toBe([
      `location = ${CONFIG_PROBE_PATH} {`,
      '      allow 127.0.0.0/8;',
      '      deny all;',
      '      content_by_lua_block { require("depl_edge").report() }',
    ].join('\n'));
    expect(renderNginxConfig(settings, { ...swarm, probeAllow: ['10.9.9.9/32'] })).toContain('      allow 10.9.9.9/32;\n      deny all;\n');
    expect(() => renderNginxConfig(settings, { ...swarm, probeAllow: ['all; allow 0.0.0.0/0'] })).toThrow(/probe allow "all; allow 0.0.0.0\/0" is not an IPv4 address or network/);
  });

  it('answers the probe host with the generations, from Lua', () => {
    const text = renderNginxConfig(settings, swarm);
    const probe = text.slice(text.indexOf('server_name depl-edge-probe.invalid;'), text.indexOf('default_server'));
    expect(probe).toContain('      deny all;\n      content_by_lua_block { require("depl_edge").report() }');
  });

  it('embeds the routing code as the module depl_edge, indented inside init_by_lua_block', () => {
    const text = renderNginxConfig(settings, swarm);
    expect(text).toContain('    local dict = ngx.shared.depl_routing');
    expect(text).toContain('    package.loaded.depl_edge = M');
    expect(text).not.toMatch(/^ {4}return M$/m);
    expect(EDGE_LUA_MODULE.trim().endsWith('return M')).toBe(true);
  });

  it('resolves service names through Docker DNS with a short validity; a loopback edge needs none', () => {
    expect(renderNginxConfig(settings, swarm)).toContain('resolver 127.0.0.11 valid=5s ipv6=off;');
    const local = renderNginxConfig(settings, { ...swarm, resolver: undefined, listen: { port: 8080, address: '127.0.0.1' } });
    expect(local).not.toContain('resolver');
    expect(local).toContain('listen 127.0.0.1:8080 default_server;');
  });

  it('logs JSON lines with the version, status and upstream time, and retries another task on errors', () => {
    const text = renderNginxConfig(settings, swarm);
    expect(text).toContain('log_format depl_json escape=json \'{"msec":$msec,"host":"$host","version":"$depl_version",\'');
    expect(text).toContain('"upstream_time":"$upstream_response_time"');
    expect(text).toContain('access_log /var/lib/depl/shop/edge/logs/access.log depl_json;');
    expect(text).toContain('proxy_next_upstream error timeout http_502 http_503 http_504;');
    expect(text).toContain('proxy_next_upstream_tries 3;');
    expect(text).toContain('keepalive_timeout 65s;');
    expect(text).toContain('lingering_close always;');
  });

  it('tells configurations apart by a generation the edge reports', () => {
    const one = configGeneration(settings, swarm);
    expect(one).toMatch(/^[0-9a-f]{8}$/);
    expect(configGeneration(settings, { ...swarm, listen: { port: 8080 } })).not.toBe(one);
    expect(configGeneration({ app: 'other' }, swarm)).not.toBe(one);
    expect(renderNginxConfig(settings, swarm)).toContain(`# generation ${one}\n`);
    expect(renderNginxConfig(settings, swarm)).toContain(`config = "${one}" })`);
  });

  it('refuses names, paths and listen addresses that are not plain', () => {
    expect(() => renderNginxConfig({ app: 'Shop' }, swarm)).toThrow(/app name "Shop"/);
    expect(() => renderNginxConfig(settings, { ...swarm, paths: { ...swarm.paths, accessLog: '/x; evil' } })).toThrow(/accessLog path/);
    expect(() => renderNginxConfig(settings, { ...swarm, paths: { ...swarm.paths, routing: '/x"; os.exit()' } })).toThrow(/routing path/);
    expect(() => renderNginxConfig(settings, { ...swarm, listen: { port: 70000 } })).toThrow(/listen port/);
    expect(() => renderNginxConfig(settings, { ...swarm, resolver: 'dns;' })).toThrow(/resolver/);
    expect(() => renderNginxConfig(settings, { ...swarm, pollSeconds: 0 })).toThrow(/poll interval/);
  });
});

describe("the cluster's edge: several apps' routing tables", () => {
  const { routing: _one, ...shared } = swarm.paths;
  const cluster: NginxRenderOptions = { ...swarm, paths: { ...shared, apps: '/var/lib/depl/_edge/apps', routes: '/var/lib/depl/_edge/routes' } };

  it('reads the app list and the folder of tables instead of one table, and says so', () => {
    const text = renderNginxConfig(edgeSettingsFor(cluster, 'shop'), cluster);
    expect(text).toContain('M.init({ apps = "/var/lib/depl/_edge/apps", routes = "/var/lib/depl/_edge/routes", poll = 0.05, config = "');
    expect(text).toMatch(/^# Generated by depl for the cluster's edge; do not edit\./);
    expect(text).not.toContain('M.init({ file');
  });

  it("renders the same settings whichever app's change renders them, so apps taking turns never reload it", () => {
    expect(edgeSettingsFor(cluster, 'shop')).toEqual(edgeSettingsFor(cluster, 'gitea'));
    expect(configGeneration(edgeSettingsFor(cluster, 'shop'), cluster)).toBe(configGeneration(edgeSettingsFor(cluster, 'gitea'), cluster));
    // an app's own edge keeps its app's name
    expect(edgeSettingsFor(swarm, 'shop')).toEqual({ app: 'shop' });
  });

  it("puts each app's table in its own file, and the probe asks for one app", () => {
    expect(appRoutingPath(cluster.paths, 'gitea')).toBe('/var/lib/depl/_edge/routes/gitea');
    expect(appRoutingPath(swarm.paths, 'gitea')).toBe('/var/lib/depl/shop/edge/routing');
    expect(probePath('gitea')).toBe(`${CONFIG_PROBE_PATH}?app=gitea`);
    expect(probePath()).toBe(CONFIG_PROBE_PATH);
  });

  it('refuses both a table and an app list, neither, or a list without its folder', () => {
    const invalid = (paths: Partial<NginxRenderOptions['paths']>) => () => renderNginxConfig(settings, { ...swarm, paths: { ...shared, ...paths } });
    expect(invalid({ routing: '/r', apps: '/a', routes: '/d' })).toThrow(/either one routing table/);
    expect(invalid({})).toThrow(/either one routing table/);
    expect(invalid({ apps: '/a' })).toThrow(/either one routing table/);
    expect(invalid({ apps: '/a', routes: '/d e' })).toThrow(/routes path "\/d e"/);
  });
});
