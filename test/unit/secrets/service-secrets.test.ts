import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { configDocument, planAccessory, planSecrets, planVersionServices } from '../../../src/plan/services.js';
import { Secret } from '../../../src/util/secret.js';

const config = parseConfig(`
app: crawler
domain: crawler.localhost
secrets: [api_token, redis_password]
services:
  api: { image: api:1, port: 8000, http: true, secrets: [api_token, redis_password] }
  worker: { image: api:1, secrets: [redis_password] }
  static: { image: web:1 }
accessories:
  redis: { image: redis, secrets: [redis_password] }
config:
  redis: "redis://redis:6379"
  redisPasswordFile: /run/secrets/redis_password
`);

const values = [
  { name: 'api_token', value: new Secret('a'.repeat(43)) },
  { name: 'redis_password', value: new Secret('r'.repeat(43)) },
];

describe('swarm secrets in service specs', () => {
  const docs = planSecrets('crawler', values);
  const refs = Object.fromEntries(docs.map((d, i) => [d.secret, { id: `sec${i}`, name: d.name }]));

  it('plans one swarm secret per value, named <app>-<name>-<version>, labelled, the value kept as a Secret', () => {
    expect(docs.map((d) => d.name)).toEqual([expect.stringMatching(/^crawler-api_token-[0-9a-f]{12}$/), expect.stringMatching(/^crawler-redis_password-[0-9a-f]{12}$/)]);
    expect(docs[0]!.labels).toEqual({ 'depl.app': 'crawler', 'depl.secret': 'api_token' });
    expect(JSON.stringify(docs)).not.toContain('aaaa');
    // a rotated value is a new swarm secret: swarm secrets cannot change
    const rotated = planSecrets('crawler', [{ name: 'api_token', value: new Secret('b'.repeat(43)) }]);
    expect(rotated[0]!.name).not.toBe(docs[0]!.name);
  });

  it('mounts each service\'s own secrets at /run/secrets/<name>, nothing in env, args or the config document', () => {
    const specs = planVersionServices({
      config, version: 'v1', images: { api: 'api:1', worker: 'api:1', static: 'web:1' }, network: 'crawler-net',
      configRef: { id: 'cfg', name: configDocument(config).name }, secrets: refs, nodes: 3,
    });
    const [api, worker, web] = specs.map((s) => s.TaskTemplate.ContainerSpec);
    expect(api!.Secrets).toEqual([
      { File: { Name: 'api_token', UID: '0', GID: '0', Mode: 0o444 }, SecretID: 'sec0', SecretName: docs[0]!.name },
      { File: { Name: 'redis_password', UID: '0', GID: '0', Mode: 0o444 }, SecretID: 'sec1', SecretName: docs[1]!.name },
    ]);
    expect(worker!.Secrets?.map((s) => s.File.Name)).toEqual(['redis_password']);
    expect(web!.Secrets).toBeUndefined();
    const everything = JSON.stringify(specs) + configDocument(config).data;
    expect(everything).not.toContain('aaaa');
    expect(everything).not.toContain('rrrr');
  });

  it('gives the accessory its secret and a label that changes when the secret is rotated', () => {
    const spec = planAccessory('crawler', 'redis', config.accessories.redis!, 'redis:7', 'crawler-net', refs);
    expect(spec.TaskTemplate.ContainerSpec.Secrets?.map((s) => s.SecretName)).toEqual([docs[1]!.name]);
    expect(spec.Labels['depl.secrets']).toBe(docs[1]!.name);
    const rotated = planSecrets('crawler', [{ name: 'redis_password', value: new Secret('s'.repeat(43)) }]);
    const after = planAccessory('crawler', 'redis', config.accessories.redis!, 'redis:7', 'crawler-net', { redis_password: { id: 'x', name: rotated[0]!.name } });
    expect(after.Labels['depl.secrets']).not.toBe(spec.Labels['depl.secrets']);
  });

  it('is a bug to plan a service without its secret', () => {
    expect(() => planAccessory('crawler', 'redis', config.accessories.redis!, 'redis:7', 'crawler-net', {})).toThrow(/no swarm secret planned for redis_password/);
  });
});
