import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * The emulator's GET /v3/auth/tokens, what keystonemiddleware (a Swift or Heat `authtoken`) asks Keystone for
 * every request it checks. Each answer here is the one Debian's Keystone 22 gave to the same request (probed with
 * test/support/openstack-real's Keystone: statuses, messages, the subject header, the policy on who may
 * validate whose token).
 */
describe('the emulator\'s token validation', () => {
  let cloud: OpenStackEmulator;
  beforeAll(async () => {
    cloud = await startOpenStackEmulator({
      servers: { createServer: async () => ({ address: '10.0.0.1' }), deleteServer: async () => {} },
      users: [{ name: 'demo', password: 'demo-password' }, { name: 'other', password: 'other-password' }, { name: 'swift', password: 'swift-password', roles: ['admin'] }],
      applicationCredentials: [{ id: 'ac1', secret: 'ac1-secret', user: 'demo' }],
      services: { objectStore: 'http://127.0.0.1:9/v1/AUTH_project' },
    });
  });
  afterAll(async () => {
    await cloud?.close();
  });

  const login = async (identity: unknown, scoped = true): Promise<string> => {
    const response = await fetch(`${cloud.authUrl}/auth/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: { identity, ...(scoped ? { scope: { project: { id: cloud.projectId } } } : {}) } }),
    });
    await response.arrayBuffer();
    expect(response.status).toBe(201);
    return response.headers.get('x-subject-token')!;
  };
  const password = (name: string, secret: string) => login({ methods: ['password'], password: { user: { name, domain: { name: 'Default' }, password: secret } } });
  const validate = async (headers: Record<string, string>, query = '') => {
    const response = await fetch(`${cloud.authUrl}/auth/tokens${query}`, { headers });
    return { status: response.status, subject: response.headers.get('x-subject-token'), body: await response.json() as { token?: Record<string, unknown>; error?: { message: string } } };
  };

  it('answers a service\'s validation as Keystone does: the token\'s user, project, roles and (unless nocatalog) catalog', async () => {
    const [service, user, app] = await Promise.all([password('swift', 'swift-password'), password('demo', 'demo-password'),
      login({ methods: ['application_credential'], application_credential: { id: 'ac1', secret: 'ac1-secret' } }, false)]);
    const checked = await validate({ 'x-auth-token': service, 'x-subject-token': app }, '?nocatalog');
    expect(checked.status).toBe(200);
    expect(checked.subject).toBe(app);
    expect(checked.body.token).toMatchObject({ methods: ['application_credential'], user: { name: 'demo' }, project: { id: cloud.projectId }, roles: [{ name: 'member' }, { name: 'reader' }] });
    expect(checked.body.token!.catalog).toBeUndefined();
    const withCatalog = await validate({ 'x-auth-token': service, 'x-subject-token': user });
    expect(withCatalog.body.token!.catalog).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'object-store' })]));
    // a user may validate their own tokens (the application credential's too: it acts as them), not another's
    expect((await validate({ 'x-auth-token': user, 'x-subject-token': app })).status).toBe(200);
    const other = await password('other', 'other-password');
    expect(await validate({ 'x-auth-token': other, 'x-subject-token': user })).toMatchObject({ status: 403, body: { error: { message: 'You are not authorized to perform the requested action: identity:validate_token.' } } });
  });

  it('refuses as Keystone does: 401 without a valid caller token, 404 without a subject, for an unknown one, and after a revocation', async () => {
    const [service, user] = await Promise.all([password('swift', 'swift-password'), password('demo', 'demo-password')]);
    expect(await validate({ 'x-subject-token': user })).toMatchObject({ status: 401, body: { error: { message: 'The request you have made requires authentication.' } } });
    expect((await validate({ 'x-auth-token': 'garbage', 'x-subject-token': user })).status).toBe(401);
    expect(await validate({ 'x-auth-token': service })).toMatchObject({ status: 404, body: { error: { message: 'No token in the request' } } });
    expect(await validate({ 'x-auth-token': service, 'x-subject-token': 'gAAAAABgarbage' })).toMatchObject({ status: 404, body: { error: { message: 'Could not recognize Fernet token' } } });
    cloud.revokeTokens();
    const fresh = await password('swift', 'swift-password');
    expect((await validate({ 'x-auth-token': fresh, 'x-subject-token': user })).status).toBe(404);
  });
});
