import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { packagePath } from '../../../src/util/paths.js';
import { creationOrder, evaluate, parseTemplate, resolveParameters, withIndex, type EvalContext } from '../../support/openstack-emulator/template.js';

describe('the emulator\'s reading of heat/stack.yaml', () => {
  it('finds the parameters with their Nectar defaults and the resources in dependency order', async () => {
    const t = parseTemplate(await readFile(packagePath('heat', 'stack.yaml'), 'utf8'));
    expect(t.version).toBe('2018-08-31');
    expect(Object.keys(t.parameters).sort()).toEqual(['availability_zone', 'count', 'flavor', 'image', 'key_name', 'network']);
    expect(t.parameters.image!.default).toBe('NeCTAR Ubuntu 22.04 LTS (Jammy) amd64');
    expect(t.parameters.flavor!.default).toBe('m3.small');
    expect(creationOrder(t.resources)).toEqual(['swarm_security_group', 'nodes']);
    expect(Object.keys(t.outputs)).toEqual(['node_names', 'node_addresses', 'manager_ip', 'worker_ips']);
  });

  it('opens SSH/HTTP/HTTPS to all and the swarm ports (and ESP) only to members of the group', async () => {
    const t = parseTemplate(await readFile(packagePath('heat', 'stack.yaml'), 'utf8'));
    const rules = t.resources.swarm_security_group!.properties!.rules as Array<Record<string, unknown>>;
    const open = rules.filter((r) => r.remote_ip_prefix === '0.0.0.0/0').map((r) => `${r.protocol}/${r.port_range_min ?? '*'}`);
    const members = rules.filter((r) => r.remote_mode === 'remote_group_id').map((r) => `${r.protocol}/${r.port_range_min ?? '*'}`);
    expect(open).toEqual(['tcp/22', 'tcp/80', 'tcp/443', 'icmp/*']);
    expect(members).toEqual(['tcp/2377', 'tcp/7946', 'udp/7946', 'udp/4789', '50/*']);
  });

  it('checks parameters as Heat does', async () => {
    const t = parseTemplate(await readFile(packagePath('heat', 'stack.yaml'), 'utf8'));
    expect(() => resolveParameters(t, {}, {})).toThrow('The Parameter (key_name) was not provided.');
    expect(() => resolveParameters(t, { key_name: 'k', colour: 'red' }, {})).toThrow('The Parameter (colour) was not defined in template.');
    expect(() => resolveParameters(t, { key_name: 'k', count: '51' }, {})).toThrow(/Parameter 'count' is invalid/);
    expect(resolveParameters(t, { key_name: 'k', count: 4 }, { 'OS::stack_name': 's' })).toMatchObject({ count: '4', key_name: 'k', 'OS::stack_name': 's' });
  });

  it('evaluates the intrinsic functions the template uses', () => {
    const ctx: EvalContext = {
      parameters: { 'OS::stack_name': 'web', count: '3' },
      parameterTypes: { count: 'number' },
      resourceId: (n) => `id-${n}`,
      attribute: (r, p) => (r === 'nodes' && p[0] === 'first_address' ? ['a', 'b', 'c'] : null),
    };
    expect(evaluate(withIndex({ list_join: ['-', [{ get_param: 'OS::stack_name' }, '%index%']] }, 2), ctx)).toBe('web-2');
    expect(evaluate({ get_param: 'count' }, ctx)).toBe(3);
    expect(evaluate([{ get_resource: 'sg' }], ctx)).toEqual(['id-sg']);
    expect(evaluate({ yaql: { expression: '$.data.ips.skip(1)', data: { ips: { get_attr: ['nodes', 'first_address'] } } } }, ctx)).toEqual(['b', 'c']);
    expect(evaluate({ str_replace: { template: 'host-$n', params: { $n: 'x' } } }, ctx)).toBe('host-x');
  });
});
