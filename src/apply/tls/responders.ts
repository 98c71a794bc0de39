import { rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import { OperationError } from '../../errors.js';
import { ACME_CHALLENGE_PREFIX } from '../../plan/tls/nginx.js';
import { dnsChallengeRecord } from '../../plan/tls/certificates.js';
import type { RenewerDnsCredential } from '../../plan/tls/renewal.js';
import { registerSecret } from '../../util/redact.js';
import type { DesignateClient, Zone } from '../openstack/designate.js';
import type { ChallengeResponder } from './acme.js';
import { removeChallenge, writeChallenge, type TlsStore } from './store.js';

/**
 * HTTP-01: the key authorization goes into the manager's challenge directory, which the edge serves at
 * /.well-known/acme-challenge/ for every host. `check`, when given, asks the edge for the token the way
 * the CA will, so a missing route fails here with a clear message instead of as a CA timeout.
 */
export function httpChallengeResponder(store: TlsStore, check?: (host: string, token: string) => Promise<string | null>): ChallengeResponder {
  const tokens: string[] = [];
  return {
    type: 'http-01',
    async present(identifier, token, keyAuthorization) {
      await writeChallenge(store, token, keyAuthorization);
      tokens.push(token);
      if (check === undefined) return;
      const served = await check(identifier, token);
      if (served?.trim() !== keyAuthorization) {
        throw new OperationError(
          `the edge does not serve the ACME challenge for ${identifier} (answered ${served === null ? 'nothing' : JSON.stringify(served.slice(0, 80))})`,
          'The edge must route /.well-known/acme-challenge/ to its challenge directory; re-run depl buildinst to rewrite its configuration.',
          'ACME_CHALLENGE_NOT_SERVED',
        );
      }
    },
    async cleanup() {
      for (const token of tokens.splice(0)) await removeChallenge(store, token);
    },
  };
}

/** DNS-01 through Designate: one TXT value per authorization on _acme-challenge.<domain>, removed after the order. */
export function dnsChallengeResponder(designate: DesignateClient, knownZone?: Zone): ChallengeResponder {
  const presented: Array<{ zone: Zone; fqdn: string; value: string }> = [];
  // a wildcard and its apex put two values on one recordset: one change at a time
  let queue: Promise<unknown> = Promise.resolve();
  return {
    type: 'dns-01',
    present(identifier, _token, keyAuthorization) {
      const run = queue.then(async () => {
        const fqdn = dnsChallengeRecord(identifier);
        const zone = knownZone !== undefined && inZone(fqdn, knownZone) ? knownZone : await designate.zoneFor(fqdn);
        await designate.addTxt(zone, fqdn, keyAuthorization);
        presented.push({ zone, fqdn, value: keyAuthorization });
      });
      queue = run.catch(() => undefined);
      return run;
    },
    async cleanup() {
      const byName = new Map<string, { zone: Zone; fqdn: string; values: string[] }>();
      for (const p of presented.splice(0)) {
        const entry = byName.get(p.fqdn) ?? { zone: p.zone, fqdn: p.fqdn, values: [] };
        entry.values.push(p.value);
        byName.set(p.fqdn, entry);
      }
      for (const { zone, fqdn, values } of byName.values()) await designate.removeTxt(zone, fqdn, values);
    },
  };
}

/**
 * DNS-01 for the renewal task: Designate reached with the one application credential buildinst gave it
 * (src/plan/tls/renewal.ts RenewerDnsCredential), trusting the CA that came with it. The OpenStack clients
 * load only here, when a DNS-01 certificate is due.
 */
export async function designateResponderWith(given: RenewerDnsCredential): Promise<ChallengeResponder> {
  registerSecret(given.auth.secret);
  const [{ KeystoneSession }, { DesignateClient }] = await Promise.all([import('../openstack/keystone.js'), import('../openstack/designate.js')]);
  const connect = { ...(given.caCert !== undefined ? { ca: [...rootCertificates, given.caCert] } : {}), rejectUnauthorized: given.insecure !== true };
  const session = new KeystoneSession(
    { authUrl: given.authUrl, ...(given.regionName !== undefined ? { regionName: given.regionName } : {}), interface: given.interface, auth: given.auth, source: 'the renewal task\'s DNS credential' },
    { dispatcher: new Agent({ connect }) },
  );
  return dnsChallengeResponder(new DesignateClient(session), given.zone);
}

function inZone(fqdn: string, zone: Zone): boolean {
  const name = fqdn.endsWith('.') ? fqdn : `${fqdn}.`;
  return name === zone.name || name.endsWith(`.${zone.name}`);
}

/** Asks the edge at `edgeUrl` for a challenge file the way the CA will (null: no answer), for httpChallengeResponder. */
export function edgeChallengeCheck(edgeUrl: string): (host: string, token: string) => Promise<string | null> {
  return async (host, token) => {
    try {
      const response = await request(new URL(`${ACME_CHALLENGE_PREFIX}${token}`, edgeUrl), { headers: { host: host.replace(/^\*\./, '') }, reset: true, headersTimeout: 5_000, bodyTimeout: 5_000 });
      const body = await response.body.text();
      return response.statusCode === 200 ? body : `HTTP ${response.statusCode}`;
    } catch {
      return null;
    }
  };
}
