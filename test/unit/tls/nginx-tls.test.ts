import { describe, expect, it } from 'vitest';
import { configGeneration, renderNginxConfig, type NginxRenderOptions } from '../../../src/plan/nginx.js';
import type { EdgeTlsRender } from '../../../src/plan/tls/nginx.js';
import type { InstalledCertificate } from '../../../src/plan/tls/certificates.js';
import { edgeTlsRenderFrom } from '../../../src/apply/tls/store.js';

const dir = '/var/lib/depl/shop/edge';
const tls: EdgeTlsRender = {
  port: 443,
  challengeDir: `${dir}/acme-challenge`,
  certificates: [
    { id: 'shop.example.org', names: ['shop.example.org'], chain: `${dir}/tls/shop.example.org/fullchain.pem`, key: `${dir}/tls/shop.example.org/privkey.pem`, serial: '1a2b' },
    { id: 'v1.shop.example.org', names: ['v1.shop.example.org'], chain: `${dir}/tls/v1.shop.example.org/fullchain.pem`, key: `${dir}/tls/v1.shop.example.org/privkey.pem`, serial: '3c4d' },
  ],
};
const swarm: NginxRenderOptions = {
  listen: { port: 80 },
  resolver: '127.0.0.11',
  paths: { pid: '/run/nginx.pid', accessLog: `${dir}/logs/access.log`, errorLog: `${dir}/logs/error.log`, temp: '/tmp', routing: `${dir}/routing`, modules: '/usr/lib/nginx/modules' },
  tls,
};
const settings = { app: 'shop' };

/** The server block whose server_name line is `names`, as text. */
function server(text: string, names: string, nth = 0): string {
  let start = -1;
  for (let i = 0; i <= nth; i++) start = text.indexOf(`server_name ${names};`, start + 1);
  expect(start, `no server block for ${names}`).toBeGreaterThan(-1);
  return text.slice(text.lastIndexOf('server {', start), text.indexOf('\n  }', start));
}

describe('nginx with TLS', () => {
  const text = renderNginxConfig(settings, swarm);

  it('serves each certificate\'s names on 443 with http2, routed like port 80', () => {
    const https = server(text, 'shop.example.org');
    expect(https).toContain('listen 443 ssl http2;');
    expect(https).toContain(`ssl_certificate ${dir}/tls/shop.example.org/fullchain.pem;`);
    expect(https).toContain(`ssl_certificate_key ${dir}/tls/shop.example.org/privkey.pem;`);
    expect(https).toContain('access_by_lua_block { require("depl_edge").route() }');
    expect(https).toContain('proxy_pass $depl_upstream;');
    expect(https).not.toContain('return 301');
    expect(https).not.toContain('Strict-Transport-Security');
    expect(server(text, 'v1.shop.example.org')).toContain(`ssl_certificate ${dir}/tls/v1.shop.example.org/fullchain.pem;`);
  });

  it('redirects plain http to https for hosts with a certificate only; ACME challenges are files, never routed', () => {
    expect(text).toContain('  map $host $depl_https_redirect {\n    hostnames;\n    default 0;\n    shop.example.org 1;\n    v1.shop.example.org 1;\n  }');
    const http = server(text, '_');
    expect(http).toContain('listen 80 default_server;');
    expect(http).toContain('if ($depl_https_redirect) {\n        return 301 https://$host$request_uri;\n      }');
    const challenge = http.indexOf('location ^~ /.well-known/acme-challenge/ {');
    expect(challenge).toBeGreaterThan(-1);
    expect(http.slice(challenge, http.indexOf('}', challenge))).toBe(`location ^~ /.well-known/acme-challenge/ {\n      alias ${dir}/acme-challenge/;\n      default_type text/plain;\n    `);
  });

  it('refuses unknown names in the TLS handshake', () => {
    const fallback = server(text, '_', 1);
    expect(fallback).toContain('listen 443 ssl http2 default_server;');
    expect(fallback).toContain('ssl_reject_handshake on;');
  });

  it('one wildcard certificate serves the domain and every version host', () => {
    const wildcard = renderNginxConfig(settings, { ...swarm, tls: { ...tls, certificates: [{ id: 'wildcard.shop.example.org', names: ['shop.example.org', '*.shop.example.org'], chain: `${dir}/tls/w/fullchain.pem`, key: `${dir}/tls/w/privkey.pem`, serial: '9' }] } });
    expect(server(wildcard, 'shop.example.org *.shop.example.org')).toContain(`ssl_certificate ${dir}/tls/w/fullchain.pem;`);
    expect(wildcard).toContain('    *.shop.example.org 1;');
  });

  it('adds HSTS to https answers when asked; a test port goes into the redirect; a renewed certificate is a new generation', () => {
    const hsts = renderNginxConfig(settings, { ...swarm, tls: { ...tls, hstsMaxAge: 31536000 } });
    expect(server(hsts, 'shop.example.org')).toContain('add_header Strict-Transport-Security "max-age=31536000" always;');
    expect(server(hsts, '_')).not.toContain('Strict-Transport-Security');
    const local = renderNginxConfig(settings, { ...swarm, listen: { port: 8080, address: '127.0.0.1' }, tls: { ...tls, port: 8443 } });
    expect(local).toContain('return 301 https://$host:8443$request_uri;');
    expect(local).toContain('listen 127.0.0.1:8443 ssl http2;');
    const renewed = { ...swarm, tls: { ...tls, certificates: [{ ...tls.certificates[0]!, serial: 'ffff' }, tls.certificates[1]!] } };
    expect(configGeneration(settings, renewed)).not.toBe(configGeneration(settings, swarm));
  });

  it('without tls: no 443 and no challenge location; before the first certificate: challenges only', () => {
    const plain = renderNginxConfig(settings, { ...swarm, tls: undefined });
    expect(plain).not.toContain('443');
    expect(plain).not.toContain('acme-challenge');
    const waiting = renderNginxConfig(settings, { ...swarm, tls: { ...tls, certificates: [] } });
    expect(waiting).not.toContain('ssl');
    expect(waiting).not.toContain('depl_https_redirect');
    expect(waiting).toContain('acme-challenge');
  });

  it('refuses paths and names that would change what the text means', () => {
    const bad = (t: Partial<EdgeTlsRender>) => () => renderNginxConfig(settings, { ...swarm, tls: { ...tls, ...t } });
    const cert = tls.certificates[0]!;
    expect(bad({ challengeDir: '/x; include /etc/passwd' })).toThrow(/must be absolute/);
    expect(bad({ certificates: [{ ...cert, chain: '/a b' }] })).toThrow(/must be absolute/);
    expect(bad({ certificates: [{ ...cert, id: 'a;b' }] })).toThrow(/not a host name/);
    expect(bad({ certificates: [{ ...cert, names: ['a.org; return 200'] }] })).toThrow(/not a host name/);
    expect(bad({ port: 70000 })).toThrow(/not a port/);
  });
});

describe('the edge at a given time', () => {
  const DAY = 86_400_000;
  const NOW = Date.parse('2026-12-06T00:00:00Z');
  const store = { edgeDir: dir };
  const installed: InstalledCertificate[] = [
    { id: 'shop.example.org', names: ['shop.example.org'], notBefore: NOW - 10 * DAY, notAfter: NOW + 80 * DAY, issuer: 'CN=CA', serial: '1a2b' },
    { id: 'v1.shop.example.org', names: ['v1.shop.example.org'], notBefore: NOW - 90 * DAY, notAfter: NOW - 1, issuer: 'CN=CA', serial: '3c4d' },
  ];
  const at = (now: number) => renderNginxConfig(settings, { ...swarm, tls: edgeTlsRenderFrom(store, installed, now) });

  it('leaves an expired certificate out: its host gets no https server and plain http no longer redirects it', () => {
    const text = at(NOW);
    expect(server(text, 'shop.example.org')).toContain('listen 443 ssl http2;');
    expect(text).not.toContain('server_name v1.shop.example.org;');
    expect(text).not.toContain('v1.shop.example.org 1;');
    expect(text).toContain('    shop.example.org 1;');
    // the ACME challenges stay answered on port 80, so a renewal can bring it back
    expect(text).toContain('location ^~ /.well-known/acme-challenge/');
  });

  it('served while valid: the same store one millisecond before its notAfter renders it', () => {
    const text = at(NOW - 2);
    expect(server(text, 'v1.shop.example.org')).toContain(`ssl_certificate ${dir}/tls/v1.shop.example.org/fullchain.pem;`);
    expect(text).toContain('    v1.shop.example.org 1;');
    expect(configGeneration(settings, { ...swarm, tls: edgeTlsRenderFrom(store, installed, NOW - 2) })).not.toBe(configGeneration(settings, { ...swarm, tls: edgeTlsRenderFrom(store, installed, NOW) }));
  });

  it('the canary cookie is Secure over https (and always HttpOnly, SameSite=Lax); plain http sets it without Secure', () => {
    const text = at(NOW);
    expect(text).toContain('local secure = ngx.var.https == "on" and "; Secure" or ""');
    expect(text).toContain('ngx.var.depl_set_cookie = "depl_client=" .. key .. "; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax" .. secure');
    // the same Lua serves port 80 and 443; the Set-Cookie header is added in both
    expect(server(text, 'shop.example.org')).toContain('add_header Set-Cookie $depl_set_cookie;');
    expect(server(text, '_')).toContain('add_header Set-Cookie $depl_set_cookie;');
  });
});
