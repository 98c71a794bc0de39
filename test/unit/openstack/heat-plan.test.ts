import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import type { OpenStackProviderConfig } from '../../../src/config/schema.js';
import { managedKeyName, nodesFromOutputs, stackUpToDate, stackName, stackParameters, templateParameterNames, wantsManagedKey } from '../../../src/plan/heat.js';

const config = (provider: Record<string, unknown>) =>
  parseConfig(`app: crawler\ndomain: crawler.example.org\nprovider: ${JSON.stringify({ type: 'openstack', ...provider })}\nservices: { api: { image: x } }\n`);

describe('Heat planning', () => {
  it('names the stack after the app unless provider.stack says otherwise', () => {
    expect(stackName(config({}))).toBe('crawler-nodes');
    expect(stackName(config({ stack: 'prod' }))).toBe('prod');
  });

  it('passes every parameter as a string, with the node count from depl', () => {
    const c = config({ parameters: { key_name: 'me', flavor: 'm3.medium', volume_size: 20, public: true } });
    expect(stackParameters(c.provider as OpenStackProviderConfig, 4)).toEqual({ key_name: 'me', flavor: 'm3.medium', volume_size: '20', public: 'true', count: '4' });
  });

  it('manages the key pair only when no key_name is given and the template takes one', () => {
    const template = 'heat_template_version: 2018-08-31\nparameters:\n  key_name: { type: string }\n  count: { type: number }\n';
    expect(templateParameterNames(template)).toEqual(['key_name', 'count']);
    expect(templateParameterNames('{ not yaml')).toEqual([]);
    expect(wantsManagedKey(config({}).provider as OpenStackProviderConfig, template)).toBe(true);
    expect(wantsManagedKey(config({ parameters: { key_name: 'mine' } }).provider as OpenStackProviderConfig, template)).toBe(false);
    expect(wantsManagedKey(config({}).provider as OpenStackProviderConfig, 'parameters: { count: { type: number } }')).toBe(false);
    expect(managedKeyName(config({}))).toBe('depl-crawler');
    expect(stackParameters(config({ parameters: { flavor: 'm3.medium' } }).provider as OpenStackProviderConfig, 2, { key_name: 'depl-crawler', flavor: 'x' })).toEqual({ key_name: 'depl-crawler', flavor: 'm3.medium', count: '2' });
  });

  it('knows when an update would change nothing: same template document, every parameter as it would be now', () => {
    const templateText = 'heat_template_version: 2018-08-31\nparameters:\n  count: { type: number, default: 3 }\n  flavor: { type: string, default: m3.small }\n';
    const storedTemplate = { heat_template_version: '2018-08-31', parameters: { count: { type: 'number', default: 3 }, flavor: { type: 'string', default: 'm3.small' } } };
    const base = { templateText, storedTemplate, wanted: { count: '3' }, current: { count: '3', flavor: 'm3.small', 'OS::stack_name': 's' }, status: 'CREATE_COMPLETE' };
    expect(stackUpToDate(base)).toBe(true);
    expect(stackUpToDate({ ...base, wanted: { count: '4' } })).toBe(false);
    expect(stackUpToDate({ ...base, current: { ...base.current, flavor: 'm3.medium' } })).toBe(false); // flavor back to its default
    expect(stackUpToDate({ ...base, storedTemplate: { ...storedTemplate, description: 'older' } })).toBe(false);
    expect(stackUpToDate({ ...base, status: 'UPDATE_FAILED' })).toBe(false);
  });

  it('refuses a count in provider.parameters', () => {
    const c = config({ parameters: { count: 2 } });
    expect(() => stackParameters(c.provider as OpenStackProviderConfig, 3)).toThrow(/node count comes from provider.nodes/);
  });

  it('reads the nodes from the outputs, first = manager', () => {
    const outputs = [
      { output_key: 'manager_ip', output_value: '203.0.113.5' },
      { output_key: 'node_names', output_value: ['s-0', 's-1'] },
      { output_key: 'node_addresses', output_value: ['203.0.113.5', '203.0.113.9'] },
    ];
    expect(nodesFromOutputs('s', outputs)).toEqual([
      { name: 's-0', address: '203.0.113.5' },
      { name: 's-1', address: '203.0.113.9' },
    ]);
  });

  it('explains outputs that are missing, failed or malformed', () => {
    expect(() => nodesFromOutputs('s', [{ output_key: 'manager_ip', output_value: 'x' }])).toThrow('stack s has no output "node_names" (it has: manager_ip)');
    expect(() => nodesFromOutputs('s', [{ output_key: 'node_names', output_value: null, output_error: 'The Referenced Attribute (nodes name) is incorrect.' }])).toThrow(/output "node_names" failed: The Referenced Attribute/);
    expect(() => nodesFromOutputs('s', [{ output_key: 'node_names', output_value: ['a'] }, { output_key: 'node_addresses', output_value: ['1', '2'] }])).toThrow(/1 node names but 2 addresses/);
    expect(() => nodesFromOutputs('s', [{ output_key: 'node_names', output_value: ['a'] }, { output_key: 'node_addresses', output_value: [null] }])).toThrow(/node 0 has no address yet/);
  });
});
