import { describe, expect, it } from 'vitest';
import { openstackSession } from '../../../src/apply/providers/openstack.js';
import type { LoadedConfig } from '../../../src/config/load.js';
import { parseConfig } from '../../../src/config/load.js';
import type { Logger } from '../../../src/util/log.js';

function recorder(): { log: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const none = () => undefined;
  return { warnings, log: { debug: none, info: none, step: none, error: none, warn: (m) => warnings.push(m) } };
}

const loaded: LoadedConfig = {
  config: parseConfig('app: shop\ndomain: shop.example.org\nprovider: { type: openstack }\nservices:\n  api: { image: x }\n'),
  file: '/nonexistent/depl.yaml',
  root: '/nonexistent',
};

const env = (authUrl: string) => ({
  OS_AUTH_URL: authUrl, OS_USERNAME: 'u', OS_PASSWORD: 'p', OS_PROJECT_NAME: 'proj', OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_DOMAIN_NAME: 'Default', HOME: '/nonexistent',
});

describe('the Keystone auth URL', () => {
  it('warns once when it is plain http: the password and tokens would cross the network in clear', async () => {
    const { log, warnings } = recorder();
    await openstackSession(loaded, { region: 'warn-test' }, { env: env('http://keystone.example.org:5000/v3'), cwd: '/nonexistent', interactive: false }, log);
    expect(warnings).toEqual(['the Keystone auth URL http://keystone.example.org:5000/v3 is plain http: passwords and tokens cross the network unencrypted; use its https:// address']);
  });

  it('says nothing for https', async () => {
    const { log, warnings } = recorder();
    await openstackSession(loaded, { region: 'quiet-test' }, { env: env('https://keystone.example.org:5000/v3'), cwd: '/nonexistent', interactive: false }, log);
    expect(warnings).toEqual([]);
  });
});
