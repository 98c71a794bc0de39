import * as z from 'zod';
import type { CloudCredentials } from '../../config/clouds.js';
import { OperationError } from '../../errors.js';
import { poolCountParameter, poolNodesFromOutputs } from '../../plan/pool-stack.js';
import type { PoolDecision } from '../../plan/pool-autoscale.js';
import { registerSecret } from '../../util/redact.js';
import { HeatClient, stackPath, type StackRef } from './heat.js';
import { OpenStackApiError } from './http.js';
import { KeystoneSession } from './keystone.js';

/**
 * The autoscale controller's hand on the pools: it reads the cluster's Heat stack (each pool's count parameter,
 * its nodes that are gone, whether Heat is busy) and changes a pool's count with a stack update that keeps the
 * template (PATCH, `existing`). It logs in with an application credential, handed to it as a swarm secret:
 * Heat makes a Keystone trust only when a stack is created or updated by a user other than its creator, and
 * Keystone refuses trusts to application credentials, so the credential must be one of the user who ran
 * node-up (src/workflows/pool-credential.ts makes it so). Nothing here waits on Heat: each call asks once,
 * and the next reading sees how it went.
 */

/** The swarm secret's content (JSON), as src/workflows/pool-credential.ts writes it. */
export const poolCredentialSchema = z.object({
  auth_url: z.url(),
  application_credential_id: z.string().min(1),
  application_credential_secret: z.string().min(1),
  region_name: z.string().min(1).optional(),
  interface: z.string().min(1).optional(),
});
export type PoolCredential = z.infer<typeof poolCredentialSchema>;

export function poolCredentials(text: string, source: string): CloudCredentials {
  let parsed: PoolCredential;
  try {
    parsed = poolCredentialSchema.parse(JSON.parse(text) as unknown);
  } catch (error) {
    throw new OperationError(`${source} is not an application credential for the pools: ${(error as Error).message.split('\n')[0]}`, "Run 'depl node-up' again: it writes the credential.", 'POOL_CREDENTIAL_INVALID');
  }
  registerSecret(parsed.application_credential_secret);
  return {
    authUrl: parsed.auth_url,
    interface: parsed.interface ?? 'public',
    ...(parsed.region_name !== undefined ? { regionName: parsed.region_name } : {}),
    auth: { type: 'application_credential', id: parsed.application_credential_id, secret: parsed.application_credential_secret },
    source,
  };
}

/** The stack as the controller needs it, pool by pool. */
export interface PoolStackView {
  ref: StackRef;
  status: string;
  busy: boolean;
  /** Every parameter the stack has (Heat's values, defaults included): the nodes' count and flavor are among them. */
  parameters: Record<string, string>;
  pools: Record<string, { count: number; lost: string[] }>;
}

/** What one call to Heat did: asked (202/200), or Heat was busy with the stack (409) and nothing was asked. */
export type PoolChangeOutcome = { outcome: 'asked'; what: string } | { outcome: 'busy'; what: string };

export class PoolScaler {
  private readonly heat: HeatClient;
  private ref?: StackRef;

  constructor(session: KeystoneSession, private readonly stack: string) {
    this.heat = new HeatClient(session);
  }

  static fromCredentials(credentials: CloudCredentials, stack: string): PoolScaler {
    return new PoolScaler(new KeystoneSession(credentials), stack);
  }

  private async stackRef(): Promise<StackRef> {
    if (this.ref) return this.ref;
    const ref = await this.heat.find(this.stack);
    if (!ref) throw new OperationError(`stack ${this.stack} does not exist`, "Run 'depl node-up'.", 'POOL_STACK_MISSING');
    return (this.ref = ref);
  }

  async read(pools: readonly string[]): Promise<PoolStackView> {
    const ref = await this.stackRef();
    const stack = await this.heat.show(ref);
    const { lost } = poolNodesFromOutputs(this.stack, Object.fromEntries(pools.map((p) => [p, true])), stack.outputs);
    const out: PoolStackView['pools'] = {};
    for (const pool of pools) {
      const count = Number(stack.parameters?.[poolCountParameter(pool)]);
      if (!Number.isInteger(count)) throw new OperationError(`stack ${this.stack} has no parameter ${poolCountParameter(pool)}`, "Run 'depl node-up' to add the pool to the stack.", 'HEAT_OUTPUT_MISSING');
      out[pool] = { count, lost: lost.filter((n) => n.pool === pool).map((n) => n.name) };
    }
    return { ref, status: stack.stack_status, busy: stack.stack_status.endsWith('_IN_PROGRESS'), parameters: stack.parameters ?? {}, pools: out };
  }

  /**
   * Applies a decision that is not a hold. Growing or shrinking: a stack update of the pool's count. Making lost
   * nodes again takes two readings, as node-up's repair does (src/plan/pools.ts planPoolRecovery): Heat's stack
   * check first, which marks the gone servers CHECK_FAILED; once the stack is CHECK_FAILED, an update (same
   * count), which replaces them.
   */
  async apply(pool: string, decision: PoolDecision, view: PoolStackView): Promise<PoolChangeOutcome> {
    if (decision.action === 'hold') throw new Error('a hold changes nothing');
    const ref = view.ref;
    try {
      if (decision.action === 'recreate' && view.status !== 'CHECK_FAILED') {
        // its end is the next reading's to see
        await this.heat.requestCheck(ref);
        return { outcome: 'asked', what: `stack check of ${ref.name} (marks ${view.pools[pool]?.lost.join(', ')} to be replaced)` };
      }
      await this.heat.update(ref, { parameters: { [poolCountParameter(pool)]: String(decision.to) } });
      return {
        outcome: 'asked',
        what: decision.action === 'recreate' ? `stack update of ${ref.name}: ${view.pools[pool]?.lost.join(', ')} made again` : `stack update of ${ref.name}: ${poolCountParameter(pool)} ${decision.from} -> ${decision.to}`,
      };
    } catch (error) {
      if (error instanceof OpenStackApiError && error.status === 409) return { outcome: 'busy', what: `Heat is busy with ${stackPath(ref)}: ${error.apiText}` };
      throw error;
    }
  }
}
