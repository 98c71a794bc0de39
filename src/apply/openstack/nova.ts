import type { Dispatcher } from 'undici';
import { OperationError } from '../../errors.js';
import { OpenStackApiError, type HttpOptions, type HttpResponse } from './http.js';
import type { KeystoneSession } from './keystone.js';

export interface NovaKeypair {
  name: string;
  public_key: string;
  fingerprint?: string;
  type?: string;
}

export interface NovaFlavor {
  id: string;
  name: string;
  vcpus: number;
  ram: number;
  disk?: number;
}

/** A server as GET /servers/detail lists it: what hibernate and wake read. */
export interface NovaServer {
  id: string;
  name: string;
  status: string;
  'OS-EXT-STS:task_state'?: string | null;
  addresses?: Record<string, Array<{ addr: string }>>;
}

/** The server actions hibernate and wake take (POST /servers/{id}/action with `{"<action>": null}`). */
export type NovaServerAction = 'shelve' | 'unshelve' | 'shelveOffload';

/**
 * The part of Nova depl manages: the key pair whose public half lets depl's SSH key into new servers, the
 * project's limits and flavors, and the servers' shelve and unshelve (depl hibernate and wake).
 */
export class NovaClient {
  private base?: string;

  constructor(
    private readonly session: KeystoneSession,
    private readonly options: { dispatcher?: Dispatcher } = {},
  ) {}

  private async call(path: string, options: Omit<HttpOptions, 'service' | 'dispatcher'> = {}): Promise<HttpResponse> {
    this.base ??= await this.session.endpoint('compute');
    return this.session.serviceRequest(this.base, path, { ...options, service: 'Nova', dispatcher: this.options.dispatcher });
  }


  /** GET /limits: the project's absolute limits with what it uses now (-1: unlimited). */
  async absoluteLimits(): Promise<Record<string, number>> {
    const response = await this.call('/limits');
    return (response.body as { limits?: { absolute?: Record<string, number> } }).limits?.absolute ?? {};
  }

  /** GET /flavors/detail: every flavor the project may use, with its vCPUs and RAM (MB). */
  async flavors(): Promise<NovaFlavor[]> {
    const response = await this.call('/flavors/detail');
    return (response.body as { flavors?: NovaFlavor[] }).flavors ?? [];
  }

  /** GET /servers/detail: the project's servers with their status and task state. */
  async servers(): Promise<NovaServer[]> {
    const response = await this.call('/servers/detail');
    return (response.body as { servers?: NovaServer[] }).servers ?? [];
  }

  /**
   * POST /servers/{id}/action: Nova answers 202 and works in the background (the server's status says when it
   * is done). A 409 is Nova refusing the action in the server's present state, with its own message.
   */
  async serverAction(id: string, name: string, action: NovaServerAction): Promise<void> {
    try {
      await this.call(`/servers/${encodeURIComponent(id)}/action`, { method: 'POST', json: { [action]: null } });
    } catch (error) {
      if (error instanceof OpenStackApiError && error.status === 409) {
        throw new OperationError(`Nova refused to ${action} ${name}: ${error.apiText}`, 'Run the command again: it reads the instances\' state and plans from it.', 'NOVA_ACTION_CONFLICT', { cause: error });
      }
      throw error;
    }
  }

  async keypair(name: string): Promise<NovaKeypair | undefined> {
    const response = await this.call(`/os-keypairs/${encodeURIComponent(name)}`, { accept: [404] });
    if (response.status === 404) return undefined;
    return (response.body as { keypair: NovaKeypair }).keypair;
  }

  async createKeypair(name: string, publicKey: string): Promise<NovaKeypair> {
    const response = await this.call('/os-keypairs', { method: 'POST', json: { keypair: { name, public_key: publicKey } } });
    return (response.body as { keypair: NovaKeypair }).keypair;
  }
}

/** Same key when type and base64 body match (the comment may differ). */
export function samePublicKey(a: string, b: string): boolean {
  const fields = (k: string) => k.trim().split(/\s+/).slice(0, 2).join(' ');
  return fields(a) === fields(b);
}
