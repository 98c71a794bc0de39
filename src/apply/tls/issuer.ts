import type { CertificateSpec } from '../../plan/tls/certificates.js';
import type { Logger } from '../../util/log.js';
import type { ChallengeResponder } from './acme.js';
import { installCertificate, readAccount, saveAccount, type TlsStore } from './store.js';

/**
 * THE certificate issuer: one ACME order for a certificate's names, answered by a challenge responder, and
 * the result installed in the manager's store (with the ACME account kept beside it). `depl tls renew`,
 * buildinst and the renewal task on the cluster all issue through it; they differ only in how they reach the
 * store (SSH or the task's own files) and answer challenges (the edge for HTTP-01, Designate for DNS-01).
 */
export interface CertificateIssuer {
  issue(spec: CertificateSpec): Promise<void>;
}

export interface AcmeIssuerSettings {
  /** The ACME directory URL. */
  directory: string;
  email?: string;
  /** PEM of the CA behind the directory's HTTPS (tls.caBundle's content). */
  caBundle?: string;
  /** First poll interval of an order (tests: short). */
  pollMs?: number;
}

export function acmeIssuer(store: TlsStore, settings: AcmeIssuerSettings, responder: () => Promise<ChallengeResponder>, log: Logger): CertificateIssuer {
  let answering: Promise<ChallengeResponder> | undefined;
  return {
    async issue(spec) {
      // the responder is made once, on the first order (DNS-01 signs in to the cloud only when something is issued)
      answering ??= responder();
      const [account, answers, { issueCertificate }] = await Promise.all([readAccount(store, settings.directory), answering, import('./acme.js')]);
      const issued = await issueCertificate({
        directoryUrl: settings.directory,
        ...(settings.email !== undefined ? { email: settings.email } : {}),
        ...(settings.caBundle !== undefined ? { caBundle: settings.caBundle } : {}),
        account: { key: account?.key, url: account?.url },
        names: spec.names,
        responder: answers,
        log,
        ...(settings.pollMs !== undefined ? { pollMs: settings.pollMs } : {}),
      });
      if (account?.url !== issued.account.url || account?.key !== issued.account.key) await saveAccount(store, { directory: settings.directory, ...issued.account });
      await installCertificate(store, spec.id, { chain: issued.chain, key: issued.key });
    },
  };
}
