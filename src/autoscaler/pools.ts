import { readFile } from 'node:fs/promises';
import { PoolScaler, poolCredentials, type PoolStackView } from '../apply/openstack/pool-scaler.js';
import type { PoolSettings, PoolState } from '../plan/autoscale.js';
import { decidePoolScale, otherSuPerHour, startPoolMemory } from '../plan/pool-autoscale.js';

/**
 * The controller's pool part (provider.pools.<name>.autoscale): every reading it reads the cluster's stack once,
 * asks the pure `decidePoolScale` for each pool with the backlog the service loop just read, and applies what is
 * not a hold through Heat (src/apply/openstack/pool-scaler.ts). One change per reading at most: a stack update
 * makes Heat busy, and the next reading sees it settle. Errors are recorded per pool; nothing here throws.
 */
export class PoolController {
  private scaler?: PoolScaler;

  constructor(
    private readonly settings: PoolSettings,
    private readonly emit: (event: Record<string, unknown>) => void,
    /** The credential file's text (a swarm secret); tests hand it in directly. */
    private readonly readCredential: () => Promise<string> = () => readFile(settings.credentialFile, 'utf8'),
  ) {}

  private async scalerFor(): Promise<PoolScaler> {
    this.scaler ??= PoolScaler.fromCredentials(poolCredentials(await this.readCredential(), this.settings.credentialFile), this.settings.stack);
    return this.scaler;
  }

  /** One reading: `backlogs` by service name (null: not read), `previous` what the last reading recorded. */
  async tick(now: number, backlogs: ReadonlyMap<string, number | null>, previous: Readonly<Record<string, PoolState>>, takingOver: boolean): Promise<Record<string, PoolState>> {
    const at = new Date(now).toISOString();
    const out: Record<string, PoolState> = {};
    let view: PoolStackView | undefined;
    let readError: string | undefined;
    try {
      view = await (await this.scalerFor()).read(this.settings.policies.map((p) => p.pool));
    } catch (error) {
      readError = `reading stack ${this.settings.stack}: ${(error as Error).message}`;
    }
    let changed = false;
    for (const policy of this.settings.policies) {
      const before = previous[policy.pool];
      const memory = !takingOver && before !== undefined ? before.memory : startPoolMemory(now);
      const backlog = backlogs.get(policy.service) ?? null;
      const base = { pool: policy.pool, min: policy.min, max: policy.max, backlog, observedAt: at };
      if (view === undefined) {
        out[policy.pool] = { ...base, count: before?.count ?? null, lost: before?.lost ?? [], last: before?.last ?? { at, action: 'hold', from: 0, to: 0, reason: 'the stack could not be read' }, memory, error: readError! };
        continue;
      }
      const stackPool = view.pools[policy.pool]!;
      const burn = otherSuPerHour(view.parameters, this.settings.rates, this.settings.policies, policy.pool);
      let decision = decidePoolScale(policy, this.settings.budget, memory, {
        now, backlog, count: stackPool.count, lost: stackPool.lost.length, otherSuPerHour: burn.suPerHour,
        // after one change this reading, the stack is Heat's until the next
        stackBusy: view.busy || changed,
      });
      let asked: string | undefined;
      let error: string | undefined;
      if (decision.action !== 'hold') {
        try {
          const outcome = await (await this.scalerFor()).apply(policy.pool, decision, view);
          asked = outcome.what;
          if (outcome.outcome === 'busy') decision = { ...decision, action: 'hold', to: decision.from, reason: `${decision.reason}, but Heat was busy with the stack`, memory: { ...decision.memory, lastChangeAt: memory.lastChangeAt } };
          else {
            changed = true;
            this.emit({ event: 'pool', pool: policy.pool, action: decision.action, from: decision.from, to: decision.to, backlog, reason: decision.reason, asked });
          }
        } catch (e) {
          error = `${decision.action} ${decision.from}->${decision.to}: ${(e as Error).message}`;
          decision = { ...decision, action: 'hold', to: decision.from, reason: `${decision.reason}, but Heat refused`, memory: { ...decision.memory, lastChangeAt: memory.lastChangeAt } };
        }
      }
      if (burn.unrated.length > 0) error ??= `no SU rate for ${burn.unrated.join(', ')}: the budget check leaves them out`;
      out[policy.pool] = {
        ...base,
        count: stackPool.count,
        lost: stackPool.lost,
        last: { at, action: decision.action, from: decision.from, to: decision.to, reason: decision.reason },
        ...(asked !== undefined ? { asked } : {}),
        memory: decision.memory,
        ...(error !== undefined ? { error } : {}),
      };
    }
    return out;
  }
}
