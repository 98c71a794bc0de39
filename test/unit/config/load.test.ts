import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { renderInitConfig } from '../../../src/plan/init-config.js';
import { UserError } from '../../../src/errors.js';

const template = readFileSync(new URL('../../../templates/depl.example.yaml', import.meta.url), 'utf8');

function problems(text: string): string[] {
  try {
    parseConfig(text);
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(2);
    return (error as Error).message.split('\n').slice(1).map((l) => l.trim());
  }
  throw new Error('expected the config to be rejected');
}

const minimal = `
app: crawler
domain: crawler.localhost
services:
  api: { image: api:1, port: 8000, http: true }
`;

describe('depl.yaml', () => {
  it('refuses an ssh.key with a control character and an accessory node that is neither manager nor a hostname', () => {
    const hostile = `${minimal}ssh: { key: "id_ed25519\\nansible_become_exe=/tmp/evil" }
accessories:
  redis: { image: redis, node: "node-2 ansible_become=true" }
  cache: { image: redis, node: "node-3" }
  queue: { image: redis }
`;
    expect(problems(hostile)).toEqual([
      'ssh.key: expected a path without control characters (no newline, tab or escape)',
      'accessories.redis.node: expected "manager" or a node\'s hostname (like node-2): "node-2 ansible_become=true" has a bad label "node-2 ansible_become=true": it may contain only a-z, 0-9 and "-", and must start and end with a letter or digit',
    ]);
    const fine = parseConfig(`${minimal}ssh: { key: "keys/my key" }\naccessories:\n  cache: { image: redis, node: node-3 }\n  queue: { image: redis }\n`);
    expect([fine.ssh.key, fine.accessories.cache?.node, fine.accessories.queue?.node]).toEqual(['keys/my key', 'node-3', 'manager']);
  });

  it('bootstraps over SSH unless depl.yaml says bootstrap: ansible, and names the two choices otherwise', () => {
    expect(parseConfig(minimal).bootstrap).toBe('ssh');
    expect(parseConfig(`${minimal}bootstrap: ansible\n`).bootstrap).toBe('ansible');
    expect(problems(`${minimal}bootstrap: chef\n`)).toEqual(['bootstrap: expected one of "ssh", "ansible"']);
  });

  it('accepts the example that depl init writes, for both providers', () => {
    for (const provider of ['local', 'openstack'] as const) {
      const config = parseConfig(renderInitConfig(template, { app: 'crawler', domain: 'crawler.localhost', provider }));
      expect(config.provider.type).toBe(provider);
      expect(config.services.worker?.from).toBe('api');
      expect(config.accessories.redis?.volume).toBe('redis-data:/data');
    }
  });

  it('fills defaults for what a minimal file leaves out', () => {
    const config = parseConfig(minimal);
    expect(config.provider).toEqual({ type: 'local', nodes: 3, subnet: '192.168.77.0/24', image: 'docker' });
    expect(config.ssh).toEqual({ user: 'root', key: '.depl/id_ed25519', port: 22 });
    expect(config.services.api?.replicas).toBe(1);
  });

  it('reports every problem at once, each by its path', () => {
    const lines = problems(`
app: Crawler_App
domain: "bad..domain"
provider: { type: local, nodes: "three" }
services:
  api: { image: api:1, port: "8000", replicaz: 2 }
`);
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^app: app name "Crawler_App" has upper-case letters/),
      expect.stringMatching(/^domain: domain "bad\.\.domain" has a bad label ""/),
      'provider.nodes: expected number, got string "three"',
      'services.api.port: expected number, got string "8000"',
      'services.api.replicaz: unknown key (did you mean "replicas"?)',
    ]));
    expect(lines).toHaveLength(5);
  });

  it('takes local nodes like a fresh cloud image, which log in as ubuntu and refuse root', () => {
    const cloud = parseConfig(minimal + 'provider: { type: local, image: cloud }\nssh: { user: ubuntu }\n');
    expect(cloud.provider).toMatchObject({ type: 'local', image: 'cloud' });
    expect(problems(minimal + 'provider: { type: local, image: cloud }\n')).toEqual([
      'ssh.user: local nodes with provider.image: cloud take no root login (as on Nectar): set ssh.user: ubuntu',
    ]);
    expect(problems(minimal + 'provider: { type: local, image: ubuntu }\n')[0]).toMatch(/^provider\.image: /);
  });

  it('suggests the nearest key for a misspelt top-level key', () => {
    expect(problems(minimal + 'acessories: {}\n')).toEqual(['acessories: unknown key (did you mean "accessories"?)']);
  });

  it('names the kinds of provider when the type is unknown', () => {
    const [line] = problems(minimal + 'provider: { type: aws }\n');
    expect(line).toBe("provider.type: expected one of 'local' | 'openstack'");
  });

  it('rejects a service with no image source and a "from" that names nothing', () => {
    const lines = problems(`
app: crawler
domain: crawler.localhost
services:
  api: { port: 8000 }
  worker: { from: apii }
`);
    expect(lines).toContain('services.api: expected exactly one of "build", "from" or "image"');
    expect(lines).toContain('services.worker.from: no service named "apii" (have: api, worker)');
  });

  it('takes a release phase naming one of the services, with a 10m timeout by default; refuses another name, no command or a zero timeout', () => {
    expect(parseConfig(`${minimal}release: { service: api, command: [./migrate, up] }\n`).release).toEqual({ service: 'api', command: ['./migrate', 'up'], timeout: '10m' });
    expect(problems(`${minimal}release: { service: apii, command: [./migrate] }\n`)).toContain('release.service: no service named "apii" whose image and settings the release command runs with (have: api)');
    expect(problems(`${minimal}release: { service: api, command: [] }\n`)).toContain('release.command: expected a non-empty list of arguments');
    expect(problems(`${minimal}release: { service: api, command: [x], timeout: 0s }\n`)).toContain('release.timeout: expected a duration above 0, like 10m');
    expect(problems(`${minimal}release: { service: api, command: [x], timout: 5m }\n`).join('\n')).toMatch(/release.*timout/);
  });

  it("refuses an accessory whose app-scoped service name would be one of depl's own (<app>-edge, <app>-tls-renewer)", () => {
    expect(problems(`${minimal}accessories:\n  edge: { image: redis }\n  tls-renewer: { image: redis }\n`)).toEqual([
      expect.stringMatching(/^accessories\.edge: "edge" is reserved: .* crawler-edge is depl/),
      expect.stringMatching(/^accessories\.tls-renewer: "tls-renewer" is reserved: .* crawler-tls-renewer is depl/),
    ]);
  });

  it('points at the YAML syntax error', () => {
    expect(() => parseConfig('app: [unclosed\n')).toThrow(/not valid YAML/);
  });
});
