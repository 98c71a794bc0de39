import { describe, expect, it } from 'vitest';
import type { EdgeState } from '../../../src/plan/edge-state.js';
import { configGeneration, renderNginxConfig, type NginxRenderOptions } from '../../../src/plan/nginx.js';

const swarm: NginxRenderOptions = {
  listen: { port: 80 },
  resolver: '127.0.0.11',
  paths: { pid: '/run/nginx.pid', accessLog: '/var/lib/depl/shop/edge/logs/access.log', errorLog: '/var/lib/depl/shop/edge/logs/error.log', temp: '/tmp' },
};
const v = (label: string, extra: Partial<EdgeState['versions'][number]['upstream']> = {}) => ({ label, upstream: { service: `shop-${label}-api`, port: 8000, ...extra } });
const base: EdgeState = { app: 'shop', domain: 'shop.example.org', versions: [v('20261122-130512'), v('20261123-090000')] };

/** The server block for `host`, as text. */
function serverFor(text: string, host: string): string {
  const start = text.indexOf(`server_name ${host};`);
  expect(start, `no server block for ${host}`).toBeGreaterThan(-1);
  return text.slice(text.lastIndexOf('server {', start), text.indexOf('\n  }', start));
}

describe('renderNginxConfig', () => {
  it('gives each version a server block at <version>.<domain> naming the version in a header', () => {
    const text = renderNginxConfig(base, swarm);
    const block = serverFor(text, '20261122-130512.shop.example.org');
    expect(block).toContain('set $depl_version 20261122-130512;');
    expect(block).toContain('add_header X-Depl-Version 20261122-130512 always;');
    expect(block).toContain('proxy_pass $depl_upstream;');
    expect(text).toContain('version=20261122-130512 http://shop-20261122-130512-api:8000;');
    expect(text).toContain('version=20261123-090000 http://shop-20261123-090000-api:8000;');
  });

  it('resolves service names through Docker DNS with a short validity, or proxies to a given address', () => {
    expect(renderNginxConfig(base, swarm)).toContain('resolver 127.0.0.11 valid=5s ipv6=off;');
    const local = renderNginxConfig({ ...base, versions: [v('a', { address: '127.0.0.1:4001' })] }, { ...swarm, resolver: undefined, listen: { port: 8080, address: '127.0.0.1' } });
    expect(local).toContain('version=a http://127.0.0.1:4001;');
    expect(local).not.toContain('resolver');
    expect(local).toContain('listen 127.0.0.1:8080 default_server;');
    expect(() => renderNginxConfig(base, { ...swarm, resolver: undefined })).toThrow(/need a resolver/);
  });

  it('has no live server block until a version is live, then sends the domain to it', () => {
    expect(renderNginxConfig(base, swarm)).not.toContain('server_name shop.example.org;');
    const block = serverFor(renderNginxConfig({ ...base, live: '20261122-130512' }, swarm), 'shop.example.org');
    expect(block).toContain('set $depl_version 20261122-130512;');
    expect(block).toContain('add_header X-Depl-Version 20261122-130512 always;');
  });

  it('splits the live domain for a canary by a stable client key', () => {
    const text = renderNginxConfig({ ...base, live: '20261122-130512', canary: { version: '20261123-090000', weight: 12.5 } }, swarm);
    expect(text).toContain('map $cookie_depl_client $depl_client_key {\n    "" "$remote_addr$http_user_agent";\n    default $cookie_depl_client;\n  }');
    expect(text).toContain('split_clients "${depl_client_key}" $depl_live_pick {\n    12.5% 20261123-090000;\n    * 20261122-130512;\n  }');
    const block = serverFor(text, 'shop.example.org');
    expect(block).toContain('set $depl_version $depl_live_pick;');
    expect(block).toContain('add_header X-Depl-Version $depl_live_pick always;');
  });

  it('drops the split when the canary weight is 0', () => {
    const text = renderNginxConfig({ ...base, live: '20261122-130512', canary: { version: '20261123-090000', weight: 0 } }, swarm);
    expect(text).not.toContain('split_clients');
    expect(serverFor(text, 'shop.example.org')).toContain('set $depl_version 20261122-130512;');
  });

  it('answers unknown hosts with 404 from a default server', () => {
    const text = renderNginxConfig(base, swarm);
    const defaultServer = text.slice(text.indexOf('server {'), text.indexOf('server_name 20261122'));
    expect(defaultServer).toContain('listen 80 default_server;');
    expect(defaultServer).toContain('return 404;');
  });

  it('logs JSON lines with the version, status and upstream time, and retries another task on errors', () => {
    const text = renderNginxConfig(base, swarm);
    expect(text).toContain('log_format depl_json escape=json \'{"msec":$msec,"host":"$host","version":"$depl_version",\'');
    expect(text).toContain('"upstream_time":"$upstream_response_time"');
    expect(text).toContain('access_log /var/lib/depl/shop/edge/logs/access.log depl_json;');
    expect(text).toContain('proxy_next_upstream error timeout http_502 http_503 http_504;');
    expect(text).toContain('proxy_next_upstream_tries 3;');
    expect(text).toContain('proxy_next_upstream_timeout 10s;');
    expect(text).toContain('keepalive_timeout 65s;');
    // retiring workers read and drop a request that raced their close, instead of resetting the connection
    expect(text).toContain('lingering_close always;');
  });

  it('keeps version names that are map keywords out of map keyword positions', () => {
    const text = renderNginxConfig({ ...base, versions: [v('default'), v('include')] }, swarm);
    expect(text).toContain('version=default http://shop-default-api:8000;');
    expect(text).toContain('    default "";');
  });

  it('tells configurations apart by a generation answered at /_depl/config', () => {
    const one = configGeneration({ ...base, live: '20261122-130512' }, swarm);
    const two = configGeneration({ ...base, live: '20261123-090000' }, swarm);
    expect(one).toMatch(/^[0-9a-f]{8}$/);
    expect(one).not.toBe(two);
    expect(renderNginxConfig({ ...base, live: '20261122-130512' }, swarm)).toContain(`location = /_depl/config {\n      default_type text/plain;\n      return 200 "${one}\\n";`);
  });

  it.each([
    [{ ...base, domain: 'shop example.org' }, /domain "shop example.org"/],
    [{ ...base, app: 'Shop' }, /app name "Shop" has upper-case/],
    [{ ...base, versions: [v('v1;evil')] }, /version label "v1;evil"/],
    [{ ...base, versions: [{ label: 'v1', upstream: { service: 'x y', port: 80 } }] }, /upstream service "x y"/],
    [{ ...base, versions: [v('v1', { port: 0 })] }, /upstream port 0/],
    [{ ...base, versions: [v('v1', { address: '127.0.0.1:80; return 200' })] }, /upstream address/],
    [{ ...base, versions: [v('v1'), v('v1')] }, /lists version "v1" twice/],
    [{ ...base, live: 'v9' }, /live version "v9" is not installed/],
    [{ ...base, live: '20261122-130512', canary: { version: 'v9', weight: 10 } }, /canary version "v9" is not installed/],
    [{ ...base, live: '20261122-130512', canary: { version: '20261123-090000', weight: 101 } }, /outside 0..100/],
    [{ ...base, canary: { version: '20261123-090000', weight: 10 } }, /needs a live version/],
  ])('refuses a state that would change what the config means (%#)', (state, message) => {
    expect(() => renderNginxConfig(state as EdgeState, swarm)).toThrow(message);
  });

  it('refuses paths and listen addresses that are not plain', () => {
    expect(() => renderNginxConfig(base, { ...swarm, paths: { ...swarm.paths, accessLog: '/x; evil' } })).toThrow(/accessLog path/);
    expect(() => renderNginxConfig(base, { ...swarm, listen: { port: 70000 } })).toThrow(/listen port/);
    expect(() => renderNginxConfig(base, { ...swarm, resolver: 'dns;' })).toThrow(/resolver/);
  });
});
