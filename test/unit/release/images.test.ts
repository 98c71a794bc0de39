import { describe, expect, it } from 'vitest';
import { baseImageArg, baseImageArgs, imageTag, planImages, resolveImage } from '../../../src/plan/images.js';
import { parseConfig } from '../../../src/config/load.js';
import { crawlerConfig } from './fixtures.js';

describe('image plan', () => {
  it('builds one image for api, shared by the worker through from:', () => {
    const plan = planImages(crawlerConfig(), '20261122-130512');
    expect(plan.builds).toHaveLength(1);
    expect(plan.builds[0]).toMatchObject({
      tag: 'crawler/api:20261122-130512',
      service: 'api',
      context: '.',
      dockerfile: 'templates/crawler.Dockerfile',
      usedBy: ['api', 'worker'],
    });
    expect(plan.services).toEqual({ api: 'crawler/api:20261122-130512', worker: 'crawler/api:20261122-130512' });
  });

  it('hands the base images to the build as arguments; the service\'s own args win', () => {
    const [build] = planImages(crawlerConfig(), 'v1').builds;
    expect(build!.args).toEqual({
      NODE_IMAGE: 'depl-base/node:20',
      NODE_BUILD_IMAGE: 'depl-base/node:20',
      NGINX_IMAGE: 'depl-base/nginx:1',
      REDIS_IMAGE: 'depl-base/redis:7',
      EXTRA: '1',
    });
    expect(baseImageArgs({ node: 'a', 'node-build': 'b' })).toEqual({ NODE_IMAGE: 'a', NODE_BUILD_IMAGE: 'b' });
    expect(baseImageArg('my.base-img')).toBe('MY_BASE_IMG_IMAGE');
  });

  it('resolves accessory and service images through the images: map', () => {
    const plan = planImages(crawlerConfig(), 'v1');
    expect(plan.accessories).toEqual({ redis: 'depl-base/redis:7' });
    expect(resolveImage('postgres:16', { redis: 'x' })).toBe('postgres:16');
    const cfg = parseConfig('app: a\ndomain: a.localhost\nimages: { web: local/web:1 }\nservices:\n  web: { image: web }\n  side: { image: "busybox:1" }\n');
    expect(planImages(cfg, 'v2')).toEqual({ builds: [], services: { web: 'local/web:1', side: 'busybox:1' }, accessories: {} });
  });

  it('tags images <app>/<service>:<version>', () => {
    expect(imageTag('crawler', 'api', 'feature-x')).toBe('crawler/api:feature-x');
  });
});

describe('image plan with a registry', () => {
  it('tags images under the registry host so nodes can pull them', () => {
    const config = { ...crawlerConfig(), registry: { url: 'http://10.0.0.5:5000/' } };
    expect(planImages(config, 'v3').services.worker).toBe('10.0.0.5:5000/crawler/api:v3');
    expect(imageTag('a', 'b', 'c', 'reg.example.org')).toBe('reg.example.org/a/b:c');
  });
});
