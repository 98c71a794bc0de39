import { OperationError, UserError } from '../../errors.js';
import { keystoneTime, type ListedCredential } from '../../plan/tls/renewer-credential.js';
import { registerSecret } from '../../util/redact.js';
import { OpenStackApiError } from './http.js';
import type { KeystoneSession } from './keystone.js';

/**
 * The signed-in user's Keystone application credentials (/v3/users/{user}/application_credentials): list, create,
 * delete. It does what it is asked; which to make or delete is src/plan/tls/renewer-credential.ts's. A refusal by
 * the cloud (its policy, or a login that is itself a restricted application credential) is a UserError naming what
 * to do, and nothing was created.
 */
export interface CreatedCredential {
  id: string;
  secret: string;
  expiresAt: number | null;
  /** The access rules Keystone recorded: undefined when it has none (a Keystone before Train drops them). */
  accessRules?: unknown[];
}

export class ApplicationCredentials {
  constructor(private readonly session: KeystoneSession) {}

  private async base(): Promise<string> {
    const user = await this.session.userId();
    if (user === undefined) throw new OperationError('Keystone\'s token names no user: application credentials cannot be listed', undefined, 'OPENSTACK_PROTOCOL');
    return `/users/${encodeURIComponent(user)}/application_credentials`;
  }

  private async call(path: string, options: { method?: string; json?: unknown; accept?: number[] } = {}) {
    return this.session.serviceRequest(await this.session.identityUrl(), path, { ...options, service: 'Keystone' });
  }

  async list(): Promise<ListedCredential[]> {
    const body = (await this.call(await this.base())).body as { application_credentials?: Array<{ id: string; name: string; expires_at?: string | null }> };
    return (body.application_credentials ?? []).map((c) => ({ id: c.id, name: c.name, expiresAt: keystoneTime(c.expires_at) }));
  }

  async create(body: unknown): Promise<CreatedCredential> {
    let response;
    try {
      response = await this.call(await this.base(), { method: 'POST', json: body });
    } catch (error) {
      if (error instanceof OpenStackApiError && (error.status === 403 || error.status === 400)) {
        throw new UserError(
          `Keystone refused to make the renewal task's application credential: ${error.apiText}`,
          /application_credential' is not allowed/.test(error.apiText)
            ? 'node-up signs in with an application credential, which may not make another: sign in with your password for node-up (auth_type: password in clouds.yaml), or make a credential for the zone\'s recordsets yourself and name its cloud in tls.dnsCloud.'
            : 'This cloud does not let you make application credentials: make one for the zone\'s recordsets by other means and name its cloud in tls.dnsCloud, or leave the wildcard to `depl tls renew` (status says when it is due).',
          'APP_CREDENTIAL_REFUSED',
          { cause: error },
        );
      }
      throw error;
    }
    const made = (response.body as { application_credential?: { id?: string; secret?: string; expires_at?: string | null; access_rules?: unknown[] } }).application_credential;
    if (made?.id === undefined || made.secret === undefined) throw new OperationError('Keystone made an application credential but did not return its id and secret', undefined, 'OPENSTACK_PROTOCOL');
    registerSecret(made.secret);
    return { id: made.id, secret: made.secret, expiresAt: keystoneTime(made.expires_at), ...(made.access_rules !== undefined ? { accessRules: made.access_rules } : {}) };
  }

  /** Deletes one; one already gone is fine (an earlier, interrupted run may have deleted it). */
  async delete(id: string): Promise<void> {
    await this.call(`${await this.base()}/${encodeURIComponent(id)}`, { method: 'DELETE', accept: [404] });
  }
}
