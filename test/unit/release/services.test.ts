import { describe, expect, it } from 'vitest';
import { CONFIG_URL, configDocument, durationNs, pinnedSpec, planAccessory, planVersionServices, placementConstraint, updateOrder } from '../../../src/plan/services.js';
import { planImages } from '../../../src/plan/images.js';
import { crawlerConfig } from './fixtures.js';

const version = '20261122-130512';

function specs(branch?: string) {
  const config = crawlerConfig();
  const doc = configDocument(config);
  return planVersionServices({
    config, version, images: planImages(config, version).services, network: 'crawler-net',
    configRef: { id: 'cfg123', name: doc.name }, nodes: 3, ...(branch ? { branch } : {}),
  });
}

describe('version service specs', () => {
  it('names services <app>-<version>-<service> and labels them', () => {
    const [api, worker] = specs();
    expect(api!.Name).toBe('crawler-20261122-130512-api');
    expect(worker!.Name).toBe('crawler-20261122-130512-worker');
    expect(api!.Labels).toEqual({
      'depl.app': 'crawler', 'depl.version': version, 'depl.service': 'api',
      'depl.http': 'true', 'depl.port': '8000', 'depl.health': '/healthz',
    });
    expect(worker!.Labels['depl.http']).toBe('false');
    expect(worker!.Labels['depl.port']).toBeUndefined();
  });

  it('runs the crawler (configArg: true) with --config pointing at the config document mounted as a file', () => {
    const [api, worker] = specs();
    const container = api!.TaskTemplate.ContainerSpec;
    expect(container.Image).toBe('crawler/api:20261122-130512');
    expect(container.Args).toEqual(['node', 'dist/crawler/api/server.js', '--config', 'file:///run/depl/config.json']);
    expect(worker!.TaskTemplate.ContainerSpec.Args).toEqual(['node', 'dist/crawler/worker/main.js', '--config', 'file:///run/depl/config.json']);
    expect(CONFIG_URL).toBe('file:///run/depl/config.json');
    expect(container.Configs).toEqual([{ File: { Name: '/run/depl/config.json', UID: '0', GID: '0', Mode: 0o444 }, ConfigID: 'cfg123', ConfigName: configDocument(crawlerConfig()).name }]);
    expect(container.Env).toEqual(['DEPL_CONFIG_FILE=/run/depl/config.json', 'DEPL_CONFIG_URL=file:///run/depl/config.json', `DEPL_VERSION=${version}`, 'LOG_LEVEL=info']);
  });

  it('uses replicas, dnsrr on the overlay network, start-first updates, SIGTERM grace periods and restarts', () => {
    const [api, worker] = specs();
    expect(api!.Mode).toEqual({ Replicated: { Replicas: 2 } });
    expect(worker!.Mode).toEqual({ Replicated: { Replicas: 3 } });
    expect(api!.EndpointSpec).toEqual({ Mode: 'dnsrr' });
    expect(api!.TaskTemplate.Networks).toEqual([{ Target: 'crawler-net' }]);
    expect(api!.UpdateConfig.Order).toBe('start-first');
    expect(api!.UpdateConfig.FailureAction).toBe('rollback');
    expect(api!.TaskTemplate.ContainerSpec.StopSignal).toBe('SIGTERM');
    expect(api!.TaskTemplate.ContainerSpec.StopGracePeriod).toBe(15_000_000_000);
    expect(worker!.TaskTemplate.ContainerSpec.StopGracePeriod).toBe(30_000_000_000);
    expect(api!.TaskTemplate.RestartPolicy.Condition).toBe('any');
  });

  it('labels tasks with the built image id, so a rebuilt image under a branch\'s unchanged tag still replaces them', () => {
    const config = crawlerConfig();
    const [api, worker] = planVersionServices({
      config, version, images: planImages(config, version).services, imageIds: { api: 'sha256:abc', worker: 'sha256:abc' },
      network: 'n', configRef: { id: 'c', name: 'crawler-config-x' }, nodes: 3,
    });
    expect(api!.TaskTemplate.ContainerSpec.Labels!['depl.image-id']).toBe('sha256:abc');
    expect(worker!.TaskTemplate.ContainerSpec.Labels!['depl.image-id']).toBe('sha256:abc');
    expect(specs()[0]!.TaskTemplate.ContainerSpec.Labels!['depl.image-id']).toBeUndefined();
  });

  it('creates the services at the app\'s recorded scale (depl scale), depl.yaml\'s replicas for the rest', () => {
    const config = crawlerConfig();
    const [api, worker] = planVersionServices({
      config, version, images: planImages(config, version).services, network: 'n', configRef: { id: 'c', name: 'crawler-config-x' }, nodes: 3,
      scale: { worker: 5, removed: 2 },
    });
    expect(api!.Mode).toEqual({ Replicated: { Replicas: 2 } });
    expect(worker!.Mode).toEqual({ Replicated: { Replicas: 5 } });
  });

  it('marks a branch deploy', () => {
    expect(specs('feature-x')[0]!.Labels['depl.branch']).toBe('feature-x');
  });

  it('picks stop-first only where start-first could never converge', () => {
    expect(updateOrder(2, 3)).toBe('start-first');
    expect(updateOrder(3, 3, 1)).toBe('stop-first');
    expect(updateOrder(2, 3, 1)).toBe('start-first');
    expect(updateOrder(6, 3, 2)).toBe('stop-first');
  });

  it('converts durations to nanoseconds', () => {
    expect(durationNs('500ms')).toBe(500_000_000);
    expect(durationNs('2m')).toBe(120_000_000_000);
    expect(() => durationNs('soon')).toThrow();
  });
});

describe('config document', () => {
  it('is named by its content hash, so a change makes a new (immutable) swarm config', () => {
    const a = configDocument(crawlerConfig());
    expect(a.name).toMatch(/^crawler-config-[0-9a-f]{12}$/);
    expect(JSON.parse(a.data)).toEqual({ redis: 'redis://redis:6379', apiTokenFile: '/run/secrets/api_token' });
    expect(configDocument(crawlerConfig()).name).toBe(a.name);
    const changed = { ...crawlerConfig(), config: { redis: 'redis://redis:6380' } };
    expect(configDocument(changed).name).not.toBe(a.name);
    expect(a.labels['depl.app']).toBe('crawler');
  });
});

describe('accessory specs', () => {
  it('names redis after its app and itself, answering to redis on the app network, pins it, keeps its data in a named volume, append-only, stop-first', () => {
    const config = crawlerConfig();
    const spec = planAccessory('crawler', 'redis', config.accessories.redis!, 'depl-base/redis:7', 'crawler-net');
    expect(spec.Name).toBe('crawler-redis');
    expect(spec.TaskTemplate.Networks).toEqual([{ Target: 'crawler-net', Aliases: ['redis'] }]);
    // the volume keeps the name depl.yaml gives it: an accessory moved from its old service name keeps its data
    expect(spec.Labels).toEqual({ 'depl.app': 'crawler', 'depl.accessory': 'redis' });
    expect(spec.TaskTemplate.ContainerSpec.Args).toEqual(['redis-server', '--appendonly', 'yes']);
    expect(spec.TaskTemplate.ContainerSpec.Mounts).toEqual([{ Type: 'volume', Source: 'crawler-redis-data', Target: '/data', VolumeOptions: { Labels: spec.Labels } }]);
    expect(spec.TaskTemplate.Placement).toEqual({ Constraints: ['node.role==manager'] });
    expect(spec.Mode).toEqual({ Replicated: { Replicas: 1 } });
    expect(spec.UpdateConfig.Order).toBe('stop-first');
    expect(spec.EndpointSpec.Mode).toBe('dnsrr');
  });

  it('pins to a named node by hostname', () => {
    expect(placementConstraint('node-2')).toBe('node.hostname==node-2');
  });
});

describe('a branch service put back after a failed redeploy', () => {
  const inspected = (labels: Record<string, string>) => ({ Name: 'shop-b-api', Labels: { 'depl.branch': 'b' }, TaskTemplate: { ContainerSpec: { Image: 'shop/api:b', Labels: labels }, Networks: [] } });

  it('runs the image its tasks ran, not the branch tag, which now names the new build', () => {
    expect(pinnedSpec(inspected({ 'depl.image-id': 'sha256:old' }), (id) => id)).toEqual({
      Name: 'shop-b-api', Labels: { 'depl.branch': 'b' }, TaskTemplate: { ContainerSpec: { Image: 'sha256:old', Labels: { 'depl.image-id': 'sha256:old' } }, Networks: [] },
    });
    expect((pinnedSpec(inspected({ 'depl.image-id': 'sha256:old' }), () => 'registry:5000/shop/api@sha256:abc') as { TaskTemplate: { ContainerSpec: { Image: string } } }).TaskTemplate.ContainerSpec.Image)
      .toBe('registry:5000/shop/api@sha256:abc');
  });

  it('keeps the spec as it is for an image depl did not build, or one that is gone', () => {
    expect(pinnedSpec(inspected({}), () => 'sha256:x')).toEqual(inspected({}));
    expect(pinnedSpec(inspected({ 'depl.image-id': 'sha256:old' }), () => undefined)).toEqual(inspected({ 'depl.image-id': 'sha256:old' }));
  });
});
