import { describe, expect, it } from 'vitest';
import { edgeContainerQuery, edgeDirsCommand, edgeImageProbe, edgeSiteCommands, planEdgeService } from '../../src/plan/edge-service.js';
import { DEBIAN_NGINX_MODULES } from '../../src/plan/nginx.js';

/** The edge as data, asserted as the exact commands and spec depl hands to Docker (like Kamal's command tests). */
describe('the edge service', () => {
  it('is nginx on the edge node, host-mode port 80, its directory bind-mounted, stopped gracefully with SIGQUIT', () => {
    const spec = planEdgeService('shop', 'depl-edge:abc', 'shop-net');
    expect(spec).toMatchObject({
      Name: 'shop-edge',
      Labels: { 'depl.app': 'shop', 'depl.role': 'edge' },
      Mode: { Replicated: { Replicas: 1 } },
      TaskTemplate: {
        ContainerSpec: {
          Image: 'depl-edge:abc', Command: ['nginx'], Args: ['-c', '/var/lib/depl/shop/edge/nginx.conf', '-g', 'daemon off;'],
          StopSignal: 'SIGQUIT', Mounts: [{ Type: 'bind', Source: '/var/lib/depl/shop/edge', Target: '/var/lib/depl/shop/edge' }],
        },
        Placement: { Constraints: ['node.labels.depl.edge==true'] },
        Networks: [{ Target: 'shop-net' }],
      },
      EndpointSpec: { Mode: 'dnsrr', Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 80, PublishMode: 'host' }] },
    });
    // a host-mode port cannot be held by two tasks at once
    expect(spec.UpdateConfig).toMatchObject({ Order: 'stop-first', Parallelism: 1 });
  });

  it('publishes 443 as well when tls: is on', () => {
    expect(planEdgeService('shop', 'img', 'net', true).EndpointSpec?.Ports?.map((p) => p.PublishedPort)).toEqual([80, 443]);
  });

  it('finds, checks, reloads and reopens logs of nginx in its container with these commands', () => {
    expect(edgeContainerQuery('shop-edge')).toEqual(['docker', 'ps', '-q', '--filter', 'label=com.docker.swarm.service.name=shop-edge', '--filter', 'status=running']);
    const site = edgeSiteCommands('c0ffee');
    expect(site.nginx(['-t', '-q'])).toEqual(['docker', 'exec', 'c0ffee', 'nginx', '-t', '-q']);
    expect(site.reload).toEqual(['docker', 'kill', '--signal', 'HUP', 'c0ffee']);
    expect(site.reopenLogs).toEqual(['docker', 'kill', '--signal', 'USR1', 'c0ffee']);
    expect(edgeDirsCommand('shop')).toEqual(['mkdir', '-p', '/var/lib/depl/shop/edge/logs']);
  });

  it('looks into an image for the Lua modules before it becomes the edge, without starting it', () => {
    expect(edgeImageProbe('nginx:1.27', DEBIAN_NGINX_MODULES).split('\n')).toEqual([
      'id=$(docker create --network none --entrypoint nginx nginx:1.27) || exit $?',
      'rc=0',
      'docker cp "$id":/usr/lib/nginx/modules/ndk_http_module.so - >/dev/null 2>&1 || { echo \'no /usr/lib/nginx/modules/ndk_http_module.so\'; rc=3; }',
      'docker cp "$id":/usr/lib/nginx/modules/ngx_http_lua_module.so - >/dev/null 2>&1 || { echo \'no /usr/lib/nginx/modules/ngx_http_lua_module.so\'; rc=3; }',
      'docker rm "$id" >/dev/null',
      'exit $rc',
    ]);
  });
});
