import https from 'node:https';
import { rootCertificates } from 'node:tls';
import * as acme from 'acme-client';
import { OperationError } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { registerSecret } from '../../util/redact.js';

/**
 * One ACME (RFC 8555) order with acme-client: account (made once per directory and kept), order for the
 * names, the challenges answered by a responder (HTTP-01 through the edge, DNS-01 through Designate),
 * finalize with a CSR for a fresh key, download the chain.
 */
export interface ChallengeResponder {
  type: 'http-01' | 'dns-01';
  /** Make the answer visible to the CA; resolves once it is (the CA checks right after). */
  present(identifier: string, token: string, keyAuthorization: string): Promise<void>;
  /** Withdraw every answer presented; called once the order is over, whether it succeeded or not. */
  cleanup(): Promise<void>;
}

export interface AcmeOrderOptions {
  directoryUrl: string;
  email?: string;
  /** PEM of the CA that signed the directory's HTTPS certificate, trusted besides the system roots. */
  caBundle?: string;
  account: { key?: string; url?: string };
  names: string[];
  responder: ChallengeResponder;
  log: Logger;
  /** First wait between polls of a pending authorization or order (doubles, up to 10 s). Default 1 s. */
  pollMs?: number;
}

export interface IssuedCertificate {
  chain: string;
  key: string;
  account: { key: string; url: string };
}

/** Nothing in acme-client is per call but its HTTP client: orders run one at a time in this process. */
let queue: Promise<unknown> = Promise.resolve();

export function issueCertificate(options: AcmeOrderOptions): Promise<IssuedCertificate> {
  const run = queue.then(() => order(options));
  queue = run.catch(() => undefined);
  return run;
}

async function order(options: AcmeOrderOptions): Promise<IssuedCertificate> {
  const { log, names, responder } = options;
  const accountKey = options.account.key ?? (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
  registerSecret(accountKey);
  const pollMs = options.pollMs ?? 1000;
  const client = new acme.Client({
    directoryUrl: options.directoryUrl,
    accountKey,
    ...(options.account.url ? { accountUrl: options.account.url } : {}),
    backoffAttempts: 12,
    backoffMin: pollMs,
    backoffMax: 10_000,
  });
  const defaults = acme.axios.defaults as typeof acme.axios.defaults & { acmeSettings: { retryMaxAttempts: number; retryDefaultDelay: number } };
  const saved = { agent: defaults.httpsAgent, retries: defaults.acmeSettings.retryMaxAttempts, delay: defaults.acmeSettings.retryDefaultDelay };
  if (options.caBundle !== undefined) defaults.httpsAgent = new https.Agent({ ca: [...rootCertificates, options.caBundle] });
  // an unreachable directory fails within seconds, not after acme-client's default ~75 s of retries
  defaults.acmeSettings.retryMaxAttempts = 2;
  defaults.acmeSettings.retryDefaultDelay = 1;
  try {
    await checkDirectory(options.directoryUrl, options.caBundle);
  } catch (error) {
    defaults.httpsAgent = saved.agent;
    throw new OperationError(`the ACME directory ${options.directoryUrl} cannot be read: ${describeAcmeError(error)}`, hintFor(error, responder.type), 'ACME_FAILED', { cause: error });
  }
  const [key, csr] = await acme.crypto.createCsr({ altNames: names }, await acme.crypto.createPrivateEcdsaKey('P-256'));
  registerSecret(key.toString());
  const started = performance.now();
  try {
    const chain = await client.auto({
      csr,
      ...(options.email ? { email: options.email } : {}),
      termsOfServiceAgreed: true,
      challengePriority: [responder.type],
      // acme-client's own pre-check resolves through this machine's DNS and port 80; the responders
      // wait until their answer is in place instead
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        if (challenge.type !== responder.type) throw new Error(`the CA offers no ${responder.type} challenge for ${authz.identifier.value} (offers: ${authz.challenges.map((c) => c.type).join(', ')})`);
        const identifier = (authz.wildcard ? '*.' : '') + authz.identifier.value;
        log.debug(`ACME: ${responder.type} for ${identifier}`);
        await responder.present(identifier, challenge.token, keyAuthorization);
      },
      // answers are withdrawn once the whole order is over (a wildcard and its apex share one TXT name)
      challengeRemoveFn: async () => undefined,
    });
    log.debug(`ACME: certificate for ${names.join(', ')} in ${Math.round(performance.now() - started)} ms`);
    return { chain, key: key.toString(), account: { key: accountKey, url: client.getAccountUrl() } };
  } catch (error) {
    throw new OperationError(
      `the ACME server at ${options.directoryUrl} did not issue a certificate for ${names.join(', ')}: ${describeAcmeError(error)}`,
      hintFor(error, responder.type),
      'ACME_FAILED',
      { cause: error },
    );
  } finally {
    defaults.httpsAgent = saved.agent;
    defaults.acmeSettings.retryMaxAttempts = saved.retries;
    defaults.acmeSettings.retryDefaultDelay = saved.delay;
    await responder.cleanup().catch((error: Error) => log.warn(`could not withdraw the ACME challenge answers: ${error.message}`));
  }
}

/**
 * acme-client loses the cause of a connection that fails outright (its retry handler reads a response
 * that is not there), so the directory is read once here first: an unreachable or untrusted server, or
 * a URL that is not an RFC 8555 directory, fails with its own reason.
 */
function checkDirectory(url: string, caBundle: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, { ...(caBundle ? { ca: [...rootCertificates, caBundle] } : {}), timeout: 15_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { if (text.length < 65_536) text += chunk; });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
        try {
          const directory = JSON.parse(text) as { newOrder?: unknown; newAccount?: unknown; newNonce?: unknown };
          if (typeof directory.newOrder === 'string' && typeof directory.newAccount === 'string' && typeof directory.newNonce === 'string') return resolve();
        } catch {
          // reported below
        }
        reject(new Error('the answer is not an ACME directory (no newNonce, newAccount, newOrder)'));
      });
    });
    request.on('timeout', () => request.destroy(new Error('no answer within 15 s')));
    request.on('error', reject);
  });
}

function describeAcmeError(error: unknown): string {
  const e = error as { message?: string; code?: string; response?: { data?: { detail?: string; type?: string } } };
  const problem = e.response?.data;
  if (problem?.detail) return `${problem.detail}${problem.type ? ` (${problem.type})` : ''}`;
  return e.message || e.code || String(error);
}

function hintFor(error: unknown, type: string): string {
  const text = describeAcmeError(error);
  if (/rejectedIdentifier|policy|forbid|blocklist/i.test(text)) return 'The CA will not issue for this name; check the domain, or use tls: files with a certificate from your institution.';
  if (/rateLimited/i.test(text)) return 'The CA is rate-limiting this account or domain; wait, or use letsencrypt-staging while testing.';
  if (/CERT|self.signed|unable to verify/i.test(text)) return "The directory's HTTPS certificate is not trusted: set tls.caBundle to its CA.";
  if (/ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|socket hang up/i.test(text)) return 'Check tls.directory and that this machine reaches it.';
  if (type === 'http-01') return 'The CA must reach http://<host>/.well-known/acme-challenge/ on port 80 of the edge node: check the DNS A record for each host and the security group.';
  return 'The CA must see the TXT record at _acme-challenge.<domain>: check that the zone is in Designate and delegated to it.';
}
