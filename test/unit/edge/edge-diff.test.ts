import { describe, expect, it } from 'vitest';
import { edgeFilesDiff, plannedEdgeFiles } from '../../../src/plan/edge-diff.js';
import { renderRoutingTable } from '../../../src/plan/edge-routing.js';
import { renderNginxConfig, type NginxRenderOptions } from '../../../src/plan/nginx.js';
import type { EdgeTlsRender } from '../../../src/plan/tls/nginx.js';
import type { Routing } from '../../../src/plan/release-state.js';

const dir = '/var/lib/depl/shop/edge';
const plain: NginxRenderOptions = {
  listen: { port: 80 },
  resolver: '127.0.0.11',
  paths: { pid: '/run/nginx.pid', accessLog: `${dir}/logs/access.log`, errorLog: `${dir}/logs/error.log`, temp: '/tmp', routing: `${dir}/routing`, modules: '/usr/lib/nginx/modules' },
};
const tls: EdgeTlsRender = {
  port: 443,
  challengeDir: `${dir}/challenges`,
  certificates: [{ id: 'shop.example', names: ['shop.example', '*.shop.example'], chain: `${dir}/tls/shop.example/fullchain.pem`, key: `${dir}/tls/shop.example/privkey.pem`, serial: '0a1b' }],
};
const paths = { routing: `${dir}/routing`, nginxConf: `${dir}/nginx.conf` };
const versions = [{ label: 'v1', upstream: { service: 'shop-v1-web', port: 8080 } }, { label: 'v2', upstream: { service: 'shop-v2-web', port: 8080 } }];
const v1Live: Routing = { app: 'shop', domain: 'shop.example', versions, live: 'v1' };
const v2Live: Routing = { ...v1Live, live: 'v2' };

describe('the edge files a change would write (--dry-run)', () => {
  it('a switch: only the routing table differs, nginx.conf is left out', () => {
    const current = { routing: renderRoutingTable(v1Live).text, nginxConf: renderNginxConfig({ app: 'shop' }, plain) };
    const diff = edgeFilesDiff(plannedEdgeFiles(v2Live, plain, paths, current), 'depl switch v2');
    expect(diff).toContain(`--- ${dir}/routing\n+++ ${dir}/routing (after depl switch v2)\n`);
    expect(diff).toMatch(/^-live v1\n\+live v2$/m);
    expect(diff).not.toContain('nginx.conf');
  });

  it('settings that changed (HTTPS turned on): nginx.conf with its server blocks as well', () => {
    const current = { routing: renderRoutingTable(v1Live).text, nginxConf: renderNginxConfig({ app: 'shop' }, plain) };
    const diff = edgeFilesDiff(plannedEdgeFiles(v2Live, { ...plain, tls }, paths, current), 'depl switch v2');
    const [routing, conf] = diff.split(/^(?==+$)/m).filter((part) => part !== '');
    expect(routing).toContain(`--- ${dir}/routing\n`);
    expect(conf).toContain(`--- ${dir}/nginx.conf\n+++ ${dir}/nginx.conf (after depl switch v2)\n`);
    expect(conf).toMatch(/^\+ {4}listen 443 ssl http2;$/m);
    expect(conf).toMatch(/^\+ {4}server_name shop\.example \*\.shop\.example;$/m);
    expect(conf).toMatch(new RegExp(`^\\+ {4}ssl_certificate ${dir}/tls/shop.example/fullchain.pem;$`, 'm'));
  });

  it('a certificate renewed (a new serial): the nginx.conf diff shows it, the routing table stays', () => {
    const current = { routing: renderRoutingTable(v1Live).text, nginxConf: renderNginxConfig({ app: 'shop' }, { ...plain, tls }) };
    const renewed = { ...tls, certificates: [{ ...tls.certificates[0]!, serial: '0c2d' }] };
    const diff = edgeFilesDiff(plannedEdgeFiles(v1Live, { ...plain, tls: renewed }, paths, current), 'depl rollback');
    expect(diff).not.toContain(`--- ${dir}/routing`);
    expect(diff).toMatch(/^- {4}# certificate shop\.example, serial 0a1b\n\+ {4}# certificate shop\.example, serial 0c2d$/m);
  });

  it('an edge without files yet: both are new, from /dev/null', () => {
    const diff = edgeFilesDiff(plannedEdgeFiles(v1Live, plain, paths, { routing: null, nginxConf: null }), 'depl switch v1');
    expect(diff).toContain(`--- /dev/null\n+++ ${dir}/routing (after depl switch v1)\n`);
    expect(diff).toContain(`--- /dev/null\n+++ ${dir}/nginx.conf (after depl switch v1)\n`);
  });

  it('nothing would change: no diff at all', () => {
    const current = { routing: renderRoutingTable(v1Live).text, nginxConf: renderNginxConfig({ app: 'shop' }, plain) };
    expect(edgeFilesDiff(plannedEdgeFiles(v1Live, plain, paths, current), 'depl canary --abort')).toBe('');
  });
});
