import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cloudsYamlCandidates, secureYamlCandidates, resolveCloudCredentials } from '../../../src/config/clouds.js';
import { UserError } from '../../../src/errors.js';
import { forgetSecrets, redact } from '../../../src/util/redact.js';

describe('OpenStack credentials from clouds.yaml and OS_* variables', () => {
  let dir: string;
  let home: string;
  let cwd: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-clouds-'));
    home = path.join(dir, 'home');
    cwd = path.join(dir, 'work');
    await mkdir(cwd, { recursive: true });
    await mkdir(path.join(home, '.config', 'openstack'), { recursive: true });
  });
  afterEach(async () => {
    forgetSecrets();
    await rm(dir, { recursive: true, force: true });
  });

  const nectar = {
    auth: { auth_url: 'https://keystone.rc.nectar.org.au:5000/v3/', username: 'me@uni.edu.au', user_domain_name: 'Default', project_id: 'p123' },
    region_name: 'Melbourne',
    interface: 'public',
    identity_api_version: 3,
  };
  const appCred = {
    auth_type: 'v3applicationcredential',
    auth: { auth_url: 'https://keystone.rc.nectar.org.au:5000/v3/', application_credential_id: 'ac1', application_credential_secret: 'ac-secret-value' },
    region_name: 'Melbourne',
  };
  const write = (file: string, clouds: Record<string, unknown>) => writeFile(file, stringify({ clouds }));
  const base = () => ({ env: {}, cwd, home, interactive: false });

  it('searches as openstacksdk does: OS_CLIENT_CONFIG_FILE first, then ./, the depl.yaml folder, ~/.config/openstack, /etc/openstack, each .yaml/.yml/.json', () => {
    const each = (folder: string, stem: string) => ['.yaml', '.yml', '.json'].map((s) => path.join(folder, stem + s));
    const folders = [cwd, '/srv/app', path.join(home, '.config/openstack'), '/etc/openstack'];
    expect(cloudsYamlCandidates({ env: {}, cwd, home, configRoot: '/srv/app' })).toEqual(folders.flatMap((f) => each(f, 'clouds')));
    expect(cloudsYamlCandidates({ env: { OS_CLIENT_CONFIG_FILE: 'x/c.yaml' }, cwd, home, configRoot: '/srv/app' })).toEqual([path.join(cwd, 'x/c.yaml'), ...folders.flatMap((f) => each(f, 'clouds'))]);
    expect(secureYamlCandidates({ env: { OS_CLIENT_SECURE_FILE: 's.json' }, cwd, home })).toEqual([path.join(cwd, 's.json'), ...[cwd, path.join(home, '.config/openstack'), '/etc/openstack'].flatMap((f) => each(f, 'secure'))]);
  });

  it('OS_CLIENT_CONFIG_FILE is tried first but a missing one falls through to the search path; clouds.yml and clouds.json are read', async () => {
    await writeFile(path.join(home, '.config/openstack/clouds.json'), JSON.stringify({ clouds: { nectar: appCred } }));
    const creds = await resolveCloudCredentials({ ...base(), cloud: 'nectar', env: { OS_CLIENT_CONFIG_FILE: path.join(dir, 'not-there.yaml') } });
    expect(creds.source).toBe(`cloud "nectar" in ${path.join(home, '.config/openstack/clouds.json')}`);
    await write(path.join(cwd, 'clouds.yml'), { nectar: { ...appCred, region_name: 'QRIScloud' } });
    expect((await resolveCloudCredentials({ ...base(), cloud: 'nectar' })).regionName).toBe('QRIScloud');
    await rm(path.join(cwd, 'clouds.yml'));
    await rm(path.join(home, '.config/openstack/clouds.json'));
  });

  it('regions: the first when none is asked for, values override the cloud, an unknown region is refused', async () => {
    await write(path.join(cwd, 'clouds.yaml'), {
      nectar: { ...appCred, region_name: undefined, regions: ['Melbourne', { name: 'Auckland', values: { interface: 'internal' } }] },
    });
    expect(await resolveCloudCredentials({ ...base(), cloud: 'nectar' })).toMatchObject({ regionName: 'Melbourne', interface: 'public' });
    expect(await resolveCloudCredentials({ ...base(), cloud: 'nectar', region: 'Auckland' })).toMatchObject({ regionName: 'Auckland', interface: 'internal' });
    expect(await resolveCloudCredentials({ ...base(), cloud: 'nectar', env: { OS_REGION_NAME: 'Auckland' } })).toMatchObject({ regionName: 'Auckland' });
    const error = await resolveCloudCredentials({ ...base(), cloud: 'nectar', region: 'Sydney' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toContain('region "Sydney" is not one of cloud "nectar"\'s regions (Melbourne, Auckland)');
    await rm(path.join(cwd, 'clouds.yaml'));
  });

  it('reads an application credential for the named cloud, first file on the path winning', async () => {
    await write(path.join(home, '.config/openstack/clouds.yaml'), { nectar: appCred });
    await write(path.join(cwd, 'clouds.yaml'), { other: appCred });
    await expect(resolveCloudCredentials({ ...base(), cloud: 'nectar' })).rejects.toThrow(/has no cloud named "nectar" \(it has: other\)/);
    await rm(path.join(cwd, 'clouds.yaml'));
    const creds = await resolveCloudCredentials({ ...base(), cloud: 'nectar' });
    expect(creds).toMatchObject({
      authUrl: 'https://keystone.rc.nectar.org.au:5000/v3/',
      regionName: 'Melbourne',
      interface: 'public',
      auth: { type: 'application_credential', id: 'ac1', secret: 'ac-secret-value' },
    });
    expect(creds.source).toContain('cloud "nectar" in');
    expect(redact('secret is ac-secret-value')).toBe('secret is [REDACTED]');
  });

  it('a missing cloud is a UserError (exit 2) naming the clouds the file has', async () => {
    await write(path.join(cwd, 'clouds.yaml'), { nectar: appCred, dev: appCred });
    const error = await resolveCloudCredentials({ ...base(), cloud: 'nectr' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(2);
    expect((error as UserError).message).toContain('no cloud named "nectr" (it has: nectar, dev)');
  });

  it('OS_CLOUD selects the cloud; OS_CLIENT_CONFIG_FILE names the file; secure.yaml on the search path is merged in', async () => {
    const file = path.join(dir, 'elsewhere.yaml');
    await write(file, { nectar });
    await writeFile(path.join(home, '.config/openstack/secure.yml'), stringify({ clouds: { nectar: { auth: { password: 'from-secure-yaml' } } } }));
    const creds = await resolveCloudCredentials({ ...base(), env: { OS_CLOUD: 'nectar', OS_CLIENT_CONFIG_FILE: file } });
    await rm(path.join(home, '.config/openstack/secure.yml'));
    expect(creds.auth).toEqual({
      type: 'password',
      username: 'me@uni.edu.au',
      userDomainName: 'Default',
      password: 'from-secure-yaml',
      projectId: 'p123',
    });
  });

  it('OS_PASSWORD and OS_REGION_NAME apply to a named cloud, as with the openstack CLI; provider.region wins', async () => {
    await write(path.join(cwd, 'clouds.yaml'), { nectar });
    const creds = await resolveCloudCredentials({ ...base(), cloud: 'nectar', env: { OS_PASSWORD: 'env-pw', OS_REGION_NAME: 'QRIScloud' } });
    expect(creds.auth).toMatchObject({ password: 'env-pw' });
    expect(creds.regionName).toBe('QRIScloud');
    expect((await resolveCloudCredentials({ ...base(), cloud: 'nectar', region: 'Auckland', env: { OS_PASSWORD: 'env-pw', OS_REGION_NAME: 'QRIScloud' } })).regionName).toBe('Auckland');
  });

  it('reads an openrc environment: password auth with the project by name and domain', async () => {
    const creds = await resolveCloudCredentials({
      ...base(),
      env: {
        OS_AUTH_URL: 'https://keystone.example:5000/v3',
        OS_USERNAME: 'bob',
        OS_PASSWORD: 'pw-from-env',
        OS_USER_DOMAIN_NAME: 'Default',
        OS_PROJECT_NAME: 'proj',
        OS_PROJECT_DOMAIN_ID: 'default',
        OS_REGION_NAME: 'Melbourne',
      },
    });
    expect(creds).toMatchObject({
      authUrl: 'https://keystone.example:5000/v3',
      regionName: 'Melbourne',
      auth: { type: 'password', username: 'bob', projectName: 'proj', projectDomainId: 'default', password: 'pw-from-env' },
    });
    expect(creds.source).toBe('the OS_* environment variables');
    expect(redact('pw-from-env')).toBe('[REDACTED]');
  });

  it('reads an application credential from OS_AUTH_TYPE=v3applicationcredential', async () => {
    const creds = await resolveCloudCredentials({
      ...base(),
      env: { OS_AUTH_URL: 'https://k/v3', OS_AUTH_TYPE: 'v3applicationcredential', OS_APPLICATION_CREDENTIAL_ID: 'id1', OS_APPLICATION_CREDENTIAL_SECRET: 's3cret-value' },
    });
    expect(creds.auth).toMatchObject({ type: 'application_credential', id: 'id1', secret: 's3cret-value' });
  });

  it('reads the TLS settings: cacert / OS_CACERT, verify: false / OS_INSECURE', async () => {
    await write(path.join(cwd, 'clouds.yaml'), { a: { ...appCred, cacert: '/etc/ssl/my-ca.pem' }, b: { ...appCred, verify: false } });
    expect(await resolveCloudCredentials({ ...base(), cloud: 'a' })).toMatchObject({ caCertFile: '/etc/ssl/my-ca.pem' });
    expect(await resolveCloudCredentials({ ...base(), cloud: 'b' })).toMatchObject({ insecure: true });
    const fromEnv = await resolveCloudCredentials({ ...base(), env: { OS_AUTH_URL: 'https://k/v3', OS_AUTH_TYPE: 'v3applicationcredential', OS_APPLICATION_CREDENTIAL_ID: 'i', OS_APPLICATION_CREDENTIAL_SECRET: 'secret-xyz', OS_CACERT: '/ca.pem', OS_INSECURE: 'true' } });
    expect(fromEnv).toMatchObject({ caCertFile: '/ca.pem', insecure: true });
  });

  it('names the variable that is missing', async () => {
    await expect(resolveCloudCredentials({ ...base(), env: { OS_AUTH_URL: 'https://k/v3', OS_AUTH_TYPE: 'v3applicationcredential', OS_APPLICATION_CREDENTIAL_ID: 'id1' } })).rejects.toThrow(/OS_APPLICATION_CREDENTIAL_SECRET/);
    await expect(resolveCloudCredentials({ ...base(), env: { OS_AUTH_URL: 'https://k/v3', OS_USERNAME: 'bob', OS_PASSWORD: 'x', OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'p' } })).rejects.toThrow(/OS_PROJECT_DOMAIN_ID/);
    await expect(resolveCloudCredentials({ ...base(), env: { OS_AUTH_URL: 'https://k/v3', OS_PASSWORD: 'x', OS_PROJECT_ID: 'p' } })).rejects.toThrow(/OS_USERNAME/);
    await expect(resolveCloudCredentials(base())).rejects.toThrow(/no OpenStack credentials/);
  });

  it('a missing password is an error naming OS_PASSWORD without a TTY or with --yes', async () => {
    await write(path.join(cwd, 'clouds.yaml'), { nectar });
    const error = await resolveCloudCredentials({ ...base(), cloud: 'nectar', askPassword: async () => 'never asked' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/no OpenStack password for user "me@uni.edu.au": set OS_PASSWORD/);
  });

  it('a missing password is asked for when interactive, and registered as a secret', async () => {
    await write(path.join(cwd, 'clouds.yaml'), { nectar });
    const asked: string[] = [];
    const creds = await resolveCloudCredentials({
      ...base(),
      cloud: 'nectar',
      interactive: true,
      askPassword: async (message) => {
        asked.push(message);
        return 'typed-password';
      },
    });
    expect(asked).toEqual(['OpenStack password for me@uni.edu.au:']);
    expect(creds.auth).toMatchObject({ password: 'typed-password' });
    expect(redact('typed-password')).toBe('[REDACTED]');
  });

  it('without a cloud name, uses the only cloud in clouds.yaml, and refuses to guess among several', async () => {
    await write(path.join(cwd, 'clouds.yaml'), { nectar: appCred });
    expect((await resolveCloudCredentials(base())).source).toContain('cloud "nectar"');
    await write(path.join(cwd, 'clouds.yaml'), { a: appCred, b: appCred });
    await expect(resolveCloudCredentials(base())).rejects.toThrow(/several \(a, b\)/);
  });

  it('rejects unsupported auth types and invalid YAML with UserErrors', async () => {
    await write(path.join(cwd, 'clouds.yaml'), { k: { ...appCred, auth_type: 'v3oidcpassword' } });
    await expect(resolveCloudCredentials({ ...base(), cloud: 'k' })).rejects.toThrow(/auth type "v3oidcpassword" is not supported/);
    await writeFile(path.join(cwd, 'clouds.yaml'), 'clouds: [unclosed');
    await expect(resolveCloudCredentials({ ...base(), cloud: 'k' })).rejects.toBeInstanceOf(UserError);
  });
});
