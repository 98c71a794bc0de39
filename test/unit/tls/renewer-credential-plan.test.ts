import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../../src/config/load.js';
import {
  credentialNeededUpFront, credentialsToDelete, currentHeldCredential, heldCredentialLabels, heldCredentialWarning, heldFromLabels, keystoneTime, ownCredentials,
  pendingCredentialRetirements, planCredentialHolding, planRenewerCredential, renewerCredentialBlocked, renewerCredentialWithoutLogin, RENEWER_CREDENTIAL_LIFETIME_MS, renewerCredentialDue, renewerAccessRules, renewerCredentialName, renewerCredentialRequest, renewerCredentialWanted, type ListedCredential,
} from '../../../src/plan/tls/renewer-credential.js';

const NOW = Date.parse('2026-12-07T13:00:00Z');
const DAY = 86_400_000;
const zone = { id: 'z1', name: 'myproject.cloud.edu.au.' };
const request = (roles: string[], dnsEndpoint = 'https://designate.rc.nectar.org.au:9001/') =>
  renewerCredentialRequest({ app: 'shop', domain: 'shop.myproject.cloud.edu.au', zone, dnsEndpoint, roles, now: NOW });
const cred = (id: string, daysLeft: number | null, app = 'shop'): ListedCredential => ({ id, name: `depl-${app}-tls-renewer-dns01-${id}`, expiresAt: daysLeft === null ? null : NOW + daysLeft * DAY });

describe('the renewal task\'s DNS credential, as data', () => {
  it('asks Keystone for the member role only, the zone\'s recordsets only, an expiry, and a name that says whose and what for', () => {
    const asked = request(['reader', 'member', 'load-balancer_member']);
    expect(asked).toEqual({
      body: {
        application_credential: {
          name: 'depl-shop-tls-renewer-dns01-20261207T130000000Z',
          description: expect.stringContaining('TLS renewal task of shop writes _acme-challenge TXT records for shop.myproject.cloud.edu.au in myproject.cloud.edu.au.'),
          expires_at: new Date(NOW + RENEWER_CREDENTIAL_LIFETIME_MS).toISOString(),
          roles: [{ name: 'member' }],
          unrestricted: false,
          access_rules: [
            { service: 'dns', method: 'GET', path: '/v2/zones/z1/recordsets' },
            { service: 'dns', method: 'POST', path: '/v2/zones/z1/recordsets' },
            { service: 'dns', method: 'GET', path: '/v2/zones/z1/recordsets/*' },
            { service: 'dns', method: 'PUT', path: '/v2/zones/z1/recordsets/*' },
            { service: 'dns', method: 'DELETE', path: '/v2/zones/z1/recordsets/*' },
          ],
        },
      },
    });
  });

  it('names each by when it was made, and a name already taken with a count (Keystone takes a name once per user)', () => {
    expect(renewerCredentialName('shop', NOW, ['depl-shop-tls-renewer-dns01-20261207T130000000Z'])).toBe('depl-shop-tls-renewer-dns01-20261207T130000000Z-2');
  });

  it('writes the rules at the path Designate sees: its catalog URL\'s path, then /v2 once', () => {
    expect(renewerAccessRules('http://127.0.0.1:5000/dns/', 'z')[0]!.path).toBe('/dns/v2/zones/z/recordsets');
    expect(renewerAccessRules('https://dns.example.org/v2', 'z')[0]!.path).toBe('/v2/zones/z/recordsets');
  });

  it('refuses, naming the roles, when the operator is no member of the project (a reader cannot write records)', () => {
    expect(request(['reader'])).toEqual({ refuse: expect.stringContaining('your roles in the project (reader) do not include member'), hint: expect.stringContaining('tls.dnsCloud') });
  });

  it('is wanted for the zero-config domain\'s DNS-01 only, and never when the operator names a credential (tls.dnsCloud)', () => {
    const config = (extra: Record<string, unknown>) => parseConfig(stringify({ app: 'shop', domain: 'shop.myproject.cloud.edu.au', provider: { type: 'openstack', dns: { zone: zone.name } }, services: { web: { image: 'web', port: 80, http: true } }, ...extra }));
    expect(renewerCredentialWanted(config({}))).toBe(true);
    expect(renewerCredentialWanted(config({ tls: { mode: 'acme', directory: 'letsencrypt' } }))).toBe(true);
    expect(renewerCredentialWanted(config({ tls: { mode: 'acme', dnsCloud: 'dns-only' } }))).toBe(false);
    expect(renewerCredentialWanted(config({ tls: { mode: 'acme', challenge: 'http-01' } }))).toBe(false);
    expect(renewerCredentialWanted(config({ tls: { mode: 'off' } }))).toBe(false);
    expect(renewerCredentialWanted(parseConfig(stringify({ app: 'shop', domain: 'shop.example.org', provider: { type: 'openstack' }, services: { web: { image: 'web', port: 80, http: true } } })))).toBe(false);
  });

  it('up front: one is made when none of this app\'s has more than 60 days left (the operator\'s own credentials do not count)', () => {
    const listed = [cred('a', 10), cred('b', 400, 'other'), { id: 'mine', name: 'my-laptop', expiresAt: null }];
    expect(ownCredentials('shop', listed).map((c) => c.id)).toEqual(['a']);
    expect(credentialNeededUpFront(ownCredentials('shop', listed), NOW)).toBe(true);
    expect(credentialNeededUpFront([cred('a', 61)], NOW)).toBe(false);
    expect(credentialNeededUpFront([], NOW)).toBe(true);
  });

  it('once the swarm is there: the one made this run wins and every other secret goes', () => {
    const held = [{ secret: 's-old', credentialId: 'old', expiresAt: NOW + 30 * DAY }];
    expect(planCredentialHolding({ own: [cred('old', 30), cred('new', 365)], held, made: 'new', now: NOW })).toEqual({ current: 'new', create: false, retireSecrets: ['s-old'] });
  });

  it('a re-run keeps the held one while it has long enough; a lost or expiring one is replaced', () => {
    const held = [{ secret: 's1', credentialId: 'c1', expiresAt: NOW + 200 * DAY }];
    expect(planCredentialHolding({ own: [cred('c1', 200)], held, now: NOW })).toEqual({ current: 'c1', create: false, retireSecrets: [] });
    // deleted in Keystone behind depl's back
    expect(planCredentialHolding({ own: [], held, now: NOW })).toEqual({ current: undefined, create: true, retireSecrets: ['s1'] });
    // a cluster made again: Keystone has one, the new swarm holds none (its secret went with the old nodes)
    expect(planCredentialHolding({ own: [cred('c1', 200)], held: [], now: NOW })).toEqual({ current: undefined, create: true, retireSecrets: [] });
    expect(planCredentialHolding({ own: [cred('c1', 59)], held: [{ ...held[0]!, expiresAt: NOW + 59 * DAY }], now: NOW })).toMatchObject({ create: true, retireSecrets: ['s1'] });
  });

  it('deletes in Keystone all of the app\'s but the current one and those a running task still mounts', () => {
    const own = [cred('a', 1), cred('b', 300), cred('c', 365)];
    expect(credentialsToDelete(own, ['c', 'b']).map((c) => c.id)).toEqual(['a']);
    expect(credentialsToDelete(own, []).map((c) => c.id)).toEqual(['a', 'b', 'c']);
  });

  it('the secret\'s labels carry the credential and its end, and read back; buildinst mounts the newest', () => {
    const labels = heldCredentialLabels('shop', 'c1', NOW + 365 * DAY);
    expect(labels).toEqual({ 'depl.app': 'shop', 'depl.renewer.credential': 'c1', 'depl.renewer.expires': '2027-12-07T13:00:00.000Z' });
    expect(heldFromLabels('s1', labels)).toEqual({ secret: 's1', credentialId: 'c1', expiresAt: NOW + 365 * DAY });
    expect(heldFromLabels('s2', { 'depl.app': 'shop' })).toBeUndefined();
    const older = { secret: 's0', credentialId: 'c0', expiresAt: NOW + DAY };
    expect(currentHeldCredential([older, heldFromLabels('s1', labels)!])?.secret).toBe('s1');
  });

  it('status says ahead when the credential is close to its end, and that the next buildinst, tls renew or node-up replaces it', () => {
    expect(heldCredentialWarning({ secret: 's', credentialId: 'c', expiresAt: NOW + 61 * DAY }, NOW)).toBeUndefined();
    expect(heldCredentialWarning({ secret: 's', credentialId: 'c', expiresAt: NOW + 20 * DAY }, NOW)).toBe("the renewal task's DNS credential expires at 2026-12-27T13:00:00.000Z (in 20 days); the next depl buildinst, depl tls renew or depl node-up replaces it with your cloud login: run one before then");
    expect(heldCredentialWarning({ secret: 's', credentialId: 'c', expiresAt: NOW - DAY }, NOW)).toMatch(/expired at 2026-12-06T13:00:00.000Z: it cannot renew the DNS-01 wildcard; run depl buildinst, depl tls renew or depl node-up/);
  });

  it('is to be replaced when none is held or it has 60 days or less left', () => {
    expect(renewerCredentialDue(undefined, NOW)).toBe(true);
    expect(renewerCredentialDue({ expiresAt: NOW + 60 * DAY }, NOW)).toBe(true);
    expect(renewerCredentialDue({ expiresAt: NOW + 61 * DAY }, NOW)).toBe(false);
    expect(renewerCredentialDue({ expiresAt: null }, NOW)).toBe(false);
  });

  describe('node-up --plan: what node-up will do about it', () => {
    const plan = (own: ListedCredential[], held: Array<{ secret: string; credentialId: string; expiresAt: number | null }>) =>
      planRenewerCredential({ command: 'depl node-up', app: 'shop', zone: zone.name, own, held, now: NOW });
    const making = `make the application credential depl-shop-tls-renewer-dns01-<now> (member role, myproject.cloud.edu.au.'s recordsets only, expires in 365 days (2027-12-07T13:00:00.000Z)) in a new swarm secret depl-tls-renewer-dns, mounted into the renewal task alone`;

    it('create: none yet', () => {
      expect(plan([], [])).toEqual({
        command: 'depl node-up', action: 'create', notes: ['the renewal task has no DNS credential yet: one is made'],
        steps: [{ kind: 'create-credential', describe: making, undo: 'delete it in Keystone and remove its swarm secret' }],
      });
    });

    it('reuse: the held one has more than 60 days left, nothing changes', () => {
      expect(plan([cred('c1', 200)], [{ secret: 's1', credentialId: 'c1', expiresAt: NOW + 200 * DAY }])).toEqual({
        command: 'depl node-up', action: 'reuse', steps: [],
        notes: ['the renewal task\'s DNS credential depl-shop-tls-renewer-dns01-c1 (c1) expires in 200 days (2027-06-25T13:00:00.000Z): kept'],
      });
    });

    it('rotate: the held one expires in 59 days; its secret goes once the task has the new one, and its credential then', () => {
      const rotated = plan([cred('c1', 59)], [{ secret: 's1', credentialId: 'c1', expiresAt: NOW + 59 * DAY }]);
      expect(rotated.action).toBe('rotate');
      expect(rotated.notes).toEqual(['the renewal task\'s DNS credential depl-shop-tls-renewer-dns01-c1 (c1) expires in 59 days (2027-02-04T13:00:00.000Z), less than 60: a new one replaces it']);
      expect(rotated.steps).toEqual([
        { kind: 'create-credential', describe: making, undo: 'delete it in Keystone and remove its swarm secret' },
        { kind: 'retire-secret', secret: 's1', credentialId: 'c1', describe: 'remove the swarm secret s1 once the renewal task no longer mounts it (depl buildinst or tls renew gives it the new one); its credential c1 is deleted then' },
      ]);
    });

    it('delete a leftover: one no secret holds (a run that failed before the swarm held it, or an earlier cluster\'s), and an older secret', () => {
      const cleaned = plan([cred('c1', 300), cred('orphan', 350), cred('old', 100)], [
        { secret: 's1', credentialId: 'c1', expiresAt: NOW + 300 * DAY },
        { secret: 's0', credentialId: 'old', expiresAt: NOW + 100 * DAY },
      ]);
      expect(cleaned.action).toBe('reuse');
      expect(cleaned.steps).toEqual([
        { kind: 'retire-secret', secret: 's0', credentialId: 'old', describe: 'remove the swarm secret s0, which holds the credential old (should swarm keep it while a task being replaced mounts it, it and its credential go on the next run)' },
        { kind: 'delete-credential', id: 'orphan', describe: 'delete the leftover application credential depl-shop-tls-renewer-dns01-orphan (expires in 350 days (2027-11-22T13:00:00.000Z); no swarm secret holds it)' },
        { kind: 'delete-credential', id: 'old', describe: 'delete the replaced application credential depl-shop-tls-renewer-dns01-old (expires in 100 days (2027-03-17T13:00:00.000Z)) once its swarm secret is removed' },
      ]);
    });

    it('a cluster made again: Keystone\'s credential is in no secret (its secret is never shown again): a new one, and the old one deleted', () => {
      const again = plan([cred('c1', 300)], []);
      expect(again.action).toBe('create');
      expect(again.notes).toEqual(['no swarm secret holds any of this app\'s credentials (Keystone never shows a secret again): a new one is made']);
      expect(again.steps.map((s) => s.kind)).toEqual(['create-credential', 'delete-credential']);
      // deleted behind depl's back: the secret names one Keystone no longer has
      expect(plan([], [{ secret: 's1', credentialId: 'gone', expiresAt: NOW + 300 * DAY }]).notes).toEqual(['the swarm\'s secret s1 names the credential gone, which Keystone no longer has: a new one replaces it']);
    });
  });

  describe('buildinst and tls renew: the same plan, giving the task the secret before any older one goes', () => {
    const held = (secret: string, credentialId: string, daysLeft: number) => ({ secret, credentialId, expiresAt: NOW + daysLeft * DAY });
    const plan = (own: ListedCredential[], secrets: ReturnType<typeof held>[], mount: 'install' | 'reinstall') =>
      planRenewerCredential({ command: mount === 'install' ? 'depl buildinst' : 'depl tls renew', app: 'shop', zone: zone.name, own, held: secrets, now: NOW, mount });

    it('rotate: make, give the task the new secret, remove the old secret, delete the old credential', () => {
      const rotated = plan([cred('c1', 59)], [held('s1', 'c1', 59)], 'reinstall');
      expect(rotated.action).toBe('rotate');
      expect(rotated.steps.slice(1)).toEqual([
        { kind: 'mount-credential', describe: 'install the renewal task again with the new secret (its settings and image as the swarm has them), when one is installed' },
        { kind: 'retire-secret', secret: 's1', credentialId: 'c1', describe: 'remove the swarm secret s1, which holds the credential c1 (should swarm keep it while a task being replaced mounts it, it and its credential go on the next run)' },
        { kind: 'delete-credential', id: 'c1', describe: 'delete the replaced application credential depl-shop-tls-renewer-dns01-c1 (expires in 59 days (2027-02-04T13:00:00.000Z)) once its swarm secret is removed' },
      ]);
    });

    it('a replaced one\'s secret swarm kept: the task given the current secret, then the old secret and credential go', () => {
      const finished = plan([cred('c1', 50), cred('c2', 360)], [held('s1', 'c1', 50), held('s2', 'c2', 360)], 'install');
      expect(finished.action).toBe('reuse');
      expect(finished.steps.map((s) => [s.kind, s.describe])).toEqual([
        ['mount-credential', 'install the renewal task with the swarm secret s2'],
        ['retire-secret', expect.stringMatching(/^remove the swarm secret s1, which holds the credential c1/)],
        ['delete-credential', expect.stringMatching(/^delete the replaced application credential depl-shop-tls-renewer-dns01-c1 /)],
      ]);
      expect(finished.steps[0]).toMatchObject({ secret: 's2' });
    });

    it('nothing due and nothing pending: no step, and no login asked for', () => {
      expect(plan([cred('c2', 300)], [held('s2', 'c2', 300)], 'install').steps).toEqual([]);
      expect(renewerCredentialWithoutLogin({ command: 'depl buildinst', held: [held('s2', 'c2', 300)], now: NOW })).toEqual({
        command: 'depl buildinst', action: 'reuse', steps: [],
        notes: ['the renewal task\'s DNS credential c2 (swarm secret s2) expires in 300 days (2027-10-03T13:00:00.000Z): kept (Keystone not asked)'],
      });
      // due, none held, or a replaced one's secret still there: sign in
      expect(renewerCredentialWithoutLogin({ command: 'c', held: [held('s1', 'c1', 60)], now: NOW })).toBeUndefined();
      expect(renewerCredentialWithoutLogin({ command: 'c', held: [], now: NOW })).toBeUndefined();
      expect(renewerCredentialWithoutLogin({ command: 'c', held: [held('s1', 'c1', 50), held('s2', 'c2', 360)], now: NOW })).toBeUndefined();
    });

    it('status names what is pending, from the swarm alone; a run that cannot sign in says what to run', () => {
      expect(pendingCredentialRetirements([held('s1', 'c1', 50), held('s2', 'c2', 360)])).toEqual([
        'the swarm secret s1 of the replaced DNS credential c1 is still there (swarm kept it while a task being replaced mounted it): the next depl buildinst, depl tls renew or depl node-up removes it and deletes the credential in Keystone',
      ]);
      expect(pendingCredentialRetirements([held('s2', 'c2', 360)])).toEqual([]);
      expect(renewerCredentialBlocked({ command: 'depl tls renew', held: [held('s1', 'c1', 50), held('s2', 'c2', 360)], now: NOW, reason: 'no password' }).notes).toEqual([
        expect.stringMatching(/^the swarm secret s1 of the replaced DNS credential c1 is still there .* \(depl tls renew could not sign in to replace it: no password\)$/),
      ]);
      expect(renewerCredentialBlocked({ command: 'depl buildinst', held: [], now: NOW, reason: 'x' })).toMatchObject({ action: 'blocked', steps: [], notes: [expect.stringMatching(/^the renewal task has no DNS credential from node-up: run depl node-up/)] });
    });
  });

  it('reads Keystone\'s times, which carry no zone (UTC)', () => {
    expect(keystoneTime('2027-12-07T13:00:00.000000')).toBe(Date.parse('2027-12-07T13:00:00Z'));
    expect(keystoneTime('2027-12-07T13:00:00Z')).toBe(Date.parse('2027-12-07T13:00:00Z'));
    expect(keystoneTime(null)).toBeNull();
  });
});
