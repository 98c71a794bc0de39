import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { HeatClient, trustRefusal } from '../../../src/apply/openstack/heat.js';
import { oneLine, OpenStackApiError, openstackRequest, retryAfterMs } from '../../../src/apply/openstack/http.js';
import { KeystoneSession } from '../../../src/apply/openstack/keystone.js';
import { createOpenStackProvider } from '../../../src/apply/providers/openstack.js';
import { parseConfig } from '../../../src/config/load.js';
import { OperationError, UserError } from '../../../src/errors.js';
import { silentLogger, type Logger } from '../../../src/util/log.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';
import { openStackProviderSettings } from '../../../src/workflows/adapter-slices.js';

const TEMPLATE = `heat_template_version: 2018-08-31
parameters:
  count: { type: number, default: 1 }
resources:
  nodes:
    type: OS::Heat::ResourceGroup
    properties:
      count: { get_param: count }
      resource_def: { type: OS::Nova::Server, properties: { name: 'n-%index%' } }
outputs:
  node_names: { value: { get_attr: [nodes, name] } }
  node_addresses: { value: { get_attr: [nodes, first_address] } }
`;

describe('riding out a cloud that has a bad moment', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  let next = 1;
  const lines: string[] = [];
  const log: Logger = { debug() {}, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), step: (m) => lines.push(m) };
  const password = () => ({ type: 'password' as const, username: 'demo', userDomainName: 'Default', password: 'demo-password', projectId: emulator.projectId });
  let counter = 0;
  const unique = () => `r${++counter}-${Date.now().toString(36)}`;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-os-resilience-'));
    emulator = await startOpenStackEmulator({
      servers: { createServer: async () => ({ address: `10.3.0.${next++}` }), deleteServer: async () => {} },
      applicationCredentials: [{ id: 'ac', secret: 'ac-secret' }],
      otherRegions: ['Auckland'],
    });
  });
  afterAll(async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    lines.length = 0;
    emulator.behaviour.faults = [];
    emulator.behaviour.stepDelayMs = 0;
  });

  const heatFor = (region = emulator.region, iface = 'public') =>
    new HeatClient(new KeystoneSession({ authUrl: emulator.authUrl, regionName: region, interface: iface, auth: password(), source: 'test' }));

  it('a wait rides out a 503 page, a dropped connection, a 429 and a 413 with Retry-After, asking each lookup again', async () => {
    const heat = heatFor();
    const ref = await heat.create(unique(), { template: TEMPLATE, parameters: { count: '2' } });
    emulator.behaviour.faults = [
      { kind: 'html-503', method: 'GET', path: '/events' },
      { kind: 'drop', method: 'GET', path: `/stacks/${ref.name}/${ref.id}` },
      { kind: 'throttle-429', method: 'GET', path: '/events', retryAfter: 1 },
      { kind: 'throttle-413', method: 'GET', path: '/events', retryAfter: 0 },
    ];
    const started = Date.now();
    const stack = await heat.waitFor(ref, { action: 'CREATE', timeoutMs: 60_000, log, pollMs: 20, maxPollMs: 50 });
    expect(stack?.stack_status).toBe('CREATE_COMPLETE');
    expect(emulator.requests.filter((r) => r.fault).map((r) => r.fault)).toEqual(['html-503', 'drop', 'throttle-429', 'throttle-413']);
    // Retry-After: 1 was honoured
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(lines.filter((l) => l.startsWith('Heat answered'))).toHaveLength(4);
    expect(emulator.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/stacks'))).toHaveLength(1);
  });

  it('a create that meets a 503 is not sent again; the error shows the HTML page as one short line', async () => {
    const heat = heatFor();
    const name = unique();
    const posts = () => emulator.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/stacks')).length;
    const before = posts();
    emulator.behaviour.faults = [{ kind: 'html-503', method: 'POST', path: '/stacks' }];
    const error = (await heat.create(name, { template: TEMPLATE, parameters: {} }).catch((e: unknown) => e)) as OpenStackApiError;
    expect(error).toBeInstanceOf(OpenStackApiError);
    expect(error.message).toBe('Heat refused POST /orchestration/v1/' + emulator.projectId + '/stacks (HTTP 503): 503 Service Unavailable');
    expect(posts()).toBe(before + 1);
    expect(emulator.stacks().some((s) => s.name === name)).toBe(false);
  });

  it('giving up while the stack builds says so, and that node-up can be re-run', async () => {
    const heat = heatFor();
    emulator.behaviour.stepDelayMs = 300;
    const ref = await heat.create(unique(), { template: TEMPLATE, parameters: { count: '1' } });
    emulator.behaviour.faults = [{ kind: 'html-503', method: 'GET', times: 100 }];
    const error = (await heat.waitFor(ref, { action: 'CREATE', timeoutMs: 1500, log, pollMs: 20 }).catch((e: unknown) => e)) as OperationError;
    emulator.behaviour.faults = [];
    expect(error).toBeInstanceOf(OperationError);
    expect(error.code).toBe('HEAT_WAIT_INTERRUPTED');
    expect(error.message).toMatch(new RegExp(`^lost contact with Heat while stack ${ref.name} was CREATE_IN_PROGRESS: .*HTTP 503\\): 503 Service Unavailable$`));
    expect(error.hint).toContain("Run 'depl node-up' again");
    await heat.waitFor(ref, { action: 'CREATE', timeoutMs: 20_000, log, pollMs: 20 });
  });

  it('picks the endpoint of the region and interface asked for', async () => {
    const heat = heatFor('Auckland', 'internal');
    await heat.find('nothing-here');
    expect(emulator.requests.at(-1)).toMatchObject({ region: 'Auckland', interface: 'internal', status: 404 });
  });

  it('an application-credential stack create gets the specific hint: log in with a password', async () => {
    const heat = new HeatClient(new KeystoneSession({ authUrl: emulator.authUrl, regionName: emulator.region, interface: 'public', auth: { type: 'application_credential', id: 'ac', secret: 'ac-secret' }, source: 'test' }));
    const error = await heat.create('ac-stack', { template: TEMPLATE, parameters: {} }).catch((e: unknown) => e);
    const refusal = trustRefusal(error, 'application_credential', 'ac-stack');
    expect(refusal).toBeInstanceOf(UserError);
    expect(refusal!.code).toBe('OPENSTACK_APP_CREDENTIAL_TRUST');
    expect(refusal!.hint).toMatch(/Keystone refuses trusts to application credentials/);
    expect(refusal!.hint).toMatch(/OS_PASSWORD/);
    // a password login's 403 is a missing role, not this
    expect(trustRefusal(error, 'password', 'ac-stack')).toBeUndefined();
  });

  it('node-up --plan asks Heat for its preview: create first, then the update, and changes nothing', async () => {
    const provider = await createOpenStackProvider(
      openStackProviderSettings({ config: parseConfig(stringify({ app: 'planner', domain: 'd.localhost', provider: { type: 'openstack', template: 'stack.yaml', parameters: { key_name: 'k' } }, services: { api: { image: 'x' } } })), file: path.join(dir, 'depl.yaml'), root: dir }),
      silentLogger,
      { env: { OS_AUTH_URL: emulator.authUrl, OS_USERNAME: 'demo', OS_USER_DOMAIN_NAME: 'Default', OS_PASSWORD: 'demo-password', OS_PROJECT_ID: emulator.projectId }, cwd: dir, interactive: false, pollMs: 10 },
    );
    await import('node:fs/promises').then((fs) => fs.writeFile(path.join(dir, 'stack.yaml'), TEMPLATE.replace('count: { type: number, default: 1 }', 'count: { type: number, default: 1 }\n  key_name: { type: string }')));
    const before = emulator.requests.length;
    const create = await provider.plan!(2, silentLogger);
    expect(create.action).toBe('create');
    expect(create.resources.added).toEqual(['nodes (OS::Heat::ResourceGroup)', '0 (OS::Nova::Server)', '1 (OS::Nova::Server)']);
    expect(emulator.stacks().filter((s) => s.name === 'planner-nodes')).toEqual([]);
    expect(emulator.requests.slice(before).filter((r) => r.method !== 'GET' && !r.path.includes('preview') && !r.path.endsWith('/auth/tokens'))).toEqual([]);
    await provider.up(2, silentLogger);
    const same = await provider.plan!(2, silentLogger);
    expect(same.action).toBe('none');
    const grow = await provider.plan!(3, silentLogger);
    expect(grow).toMatchObject({ action: 'update', resources: { updated: ['nodes (OS::Heat::ResourceGroup)'] } });
    expect(grow.lines[0]).toBe('Heat would update stack planner-nodes from 2 to 3 nodes:');
    expect(emulator.stacks().find((s) => s.name === 'planner-nodes')?.servers).toHaveLength(2);
    await provider.down(silentLogger);
  });

  it('--plan before depl\'s key pair exists says it would be uploaded first, and uploads nothing', async () => {
    const provider = await createOpenStackProvider(
      openStackProviderSettings({ config: parseConfig(stringify({ app: 'nokey', domain: 'd.localhost', provider: { type: 'openstack' }, services: { api: { image: 'x' } } })), file: path.join(dir, 'depl.yaml'), root: dir }),
      silentLogger,
      { env: { OS_AUTH_URL: emulator.authUrl, OS_USERNAME: 'demo', OS_USER_DOMAIN_NAME: 'Default', OS_PASSWORD: 'demo-password', OS_PROJECT_ID: emulator.projectId }, cwd: dir, interactive: false },
    );
    const plan = await provider.plan!(3, silentLogger);
    expect(plan).toMatchObject({ action: 'create', resources: { keypairs: ['depl-nokey'] } });
    expect(plan.lines[0]).toBe('node-up would first upload key pair depl-nokey (the public half of .depl/id_ed25519.pub), then create stack nokey-nodes with 3 nodes');
    expect(emulator.keypairs()).not.toContain('depl-nokey');
  });

  it('reads Retry-After as seconds or an HTTP date, and HTML as one line', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:05 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(5000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(oneLine('<html><body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>')).toBe('502 Bad Gateway');
    expect(oneLine('plain\n  text')).toBe('plain text');
    expect(oneLine('x'.repeat(400))).toHaveLength(160);
  });

  it('never repeats a POST on a dropped connection; a GET is asked again', async () => {
    emulator.behaviour.faults = [{ kind: 'drop', path: '/identity/v3/x' }];
    const url = `${emulator.url}/identity/v3/x`;
    await expect(openstackRequest(url, { method: 'POST', json: {}, service: 'Keystone' })).rejects.toThrow(/cannot reach Keystone/);
    emulator.behaviour.faults = [{ kind: 'drop', path: '/identity/v3/x' }];
    const response = await openstackRequest(url, { service: 'Keystone', accept: [404], retry: { baseDelayMs: 10 } });
    expect(response.status).toBe(404);
  });
});
