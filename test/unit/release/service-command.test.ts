import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { renderInitConfig } from '../../../src/plan/init-config.js';
import { CONFIG_PATH, planVersionServices, serviceArgs, type ServiceSpec } from '../../../src/plan/services.js';

/**
 * A service's image runs as `docker run IMAGE` runs it: depl adds arguments only where depl.yaml asks for them,
 * and hands every service its config document as a mounted file named by environment variables.
 */
const appYaml = (services: string) => `
app: shop
domain: shop.localhost
services:
${services}
config: { greeting: hello }
`;

function containers(services: string): Record<string, ServiceSpec['TaskTemplate']['ContainerSpec']> {
  const config = parseConfig(appYaml(services));
  const images = Object.fromEntries(Object.keys(config.services).map((name) => [name, `shop/${name}:v1`]));
  const specs = planVersionServices({ config, version: 'v1', images, network: 'shop-net', configRef: { id: 'cfg1', name: 'shop-config-abc' }, nodes: 1 });
  return Object.fromEntries(specs.map((spec) => [spec.Labels['depl.service']!, spec.TaskTemplate.ContainerSpec]));
}

describe('a service\'s command', () => {
  it('leaves a plain image (no command:) its own ENTRYPOINT and CMD: no arguments at all, no --config', () => {
    const { web } = containers('  web: { build: { dockerfile: Dockerfile }, port: 3000, http: true, health: / }');
    expect(web).not.toHaveProperty('Args');
    expect(web).not.toHaveProperty('Command');
  });

  it('uses an explicit command: as written, without --config', () => {
    const { web } = containers('  web: { image: shop:1, command: [node, server.js, --port, "3000"] }');
    expect(web!.Args).toEqual(['node', 'server.js', '--port', '3000']);
    expect(web).not.toHaveProperty('Command');
  });

  it('appends --config <url> only for configArg: true (after the command, or as the only arguments of an ENTRYPOINT image)', () => {
    const { api, agent } = containers([
      '  api: { image: shop:1, command: [node, api.js], configArg: true }',
      '  agent: { image: agent:1, configArg: true }',
    ].join('\n'));
    expect(api!.Args).toEqual(['node', 'api.js', '--config', 'file:///run/depl/config.json']);
    expect(agent!.Args).toEqual(['--config', 'file:///run/depl/config.json']);
    expect(serviceArgs({ configArg: false })).toBeUndefined();
  });

  it('gives every service the config document (the mounted file and the variables naming it) and its release; its own env may override them', () => {
    const { web, worker } = containers([
      '  web: { image: shop:1, env: { PORT: "3000" } }',
      '  worker: { image: shop:1, env: { DEPL_CONFIG_FILE: /etc/app.json } }',
    ].join('\n'));
    for (const container of [web!, worker!]) {
      expect(container.Configs).toEqual([{ File: { Name: CONFIG_PATH, UID: '0', GID: '0', Mode: 0o444 }, ConfigID: 'cfg1', ConfigName: 'shop-config-abc' }]);
    }
    expect(web!.Env).toEqual(['DEPL_CONFIG_FILE=/run/depl/config.json', 'DEPL_CONFIG_URL=file:///run/depl/config.json', 'DEPL_VERSION=v1', 'PORT=3000']);
    expect(worker!.Env).toEqual(['DEPL_CONFIG_FILE=/etc/app.json', 'DEPL_CONFIG_URL=file:///run/depl/config.json', 'DEPL_VERSION=v1']);
  });

  it('refuses a configArg that is not a boolean, naming the path', () => {
    expect(() => parseConfig(appYaml('  web: { image: shop:1, configArg: "yes" }'))).toThrow(/services\.web\.configArg/);
  });
});

describe('the example crawler as depl init writes it', () => {
  const template = readFileSync(path.join(import.meta.dirname, '..', '..', '..', 'templates', 'depl.example.yaml'), 'utf8');
  const config = parseConfig(renderInitConfig(template, { app: 'crawler', domain: 'crawler.localhost', provider: 'local' }));

  it('asks for --config on both its services, so they keep starting with their config URL', () => {
    expect(config.services.api!.configArg).toBe(true);
    expect(config.services.worker!.configArg).toBe(true);
    const specs = planVersionServices({ config, version: 'v1', images: { api: 'crawler/api:v1', worker: 'crawler/api:v1' }, network: 'n', configRef: { id: 'c', name: 'crawler-config-x' }, nodes: 3,
      secrets: { api_token: { id: 's1', name: 'crawler-api_token-1' }, redis_password: { id: 's2', name: 'crawler-redis_password-1' } } });
    expect(specs.map((s) => s.TaskTemplate.ContainerSpec.Args)).toEqual([
      ['node', '--max-semi-space-size=4', '--heap-growing-percent=20', '--liftoff-only', 'dist/crawler/api/server.js', '--config', 'file:///run/depl/config.json'],
      ['node', '--max-semi-space-size=4', '--heap-growing-percent=20', '--liftoff-only', 'dist/crawler/worker/main.js', '--config', 'file:///run/depl/config.json'],
    ]);
  });
});
