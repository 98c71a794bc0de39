import { readFile } from 'node:fs/promises';
import { PoolScaler, poolCredentials, type PoolStackView } from '../apply/openstack/pool-scaler.js';
import type { PoolPolicySettings, PoolSettings, PoolState } from '../plan/autoscale.js';
import { decidePoolScale, otherSuPerHour, startPoolMemory, type PoolDecision, type PoolMemory } from '../plan/pool-autoscale.js';
import { goingPoolNodes, OVERDUE_HINT, planPoolShrink, POOL_DRAIN_GRACE_MS } from '../plan/pool-drain.js';
import type { PoolSwarm } from './pool-swarm.js';

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
    /** The pool nodes in the swarm: drained before a shrink reaches Heat (without it, Heat removes them as they are). */
    private readonly swarm?: PoolSwarm,
  ) {}

  /**
   * A shrink, drain first (src/plan/pool-drain.ts): drains the nodes that go, or waits for them, or says the stack
   * may be updated now. Returns the decision to apply (a hold while draining) and what the state keeps of it.
   */
  private async drainFirst(policy: PoolPolicySettings, decision: PoolDecision, memory: PoolMemory, before: PoolState | undefined, now: number): Promise<{ decision: PoolDecision; draining?: PoolState['draining']; error?: string }> {
    if (this.swarm === undefined) return { decision };
    const hold = (reason: string): PoolDecision => ({ ...decision, action: 'hold', to: decision.from, reason, memory: { ...decision.memory, lastChangeAt: memory.lastChangeAt } });
    const known = before?.draining !== undefined && before.draining.to === decision.to ? before.draining.since : null;
    const step = planPoolShrink({
      stack: this.settings.stack, pool: policy.pool, from: decision.from, to: decision.to, nodes: await this.swarm.nodes(policy.pool),
      drainingSince: known, now, graceMs: policy.drainGraceMs ?? POOL_DRAIN_GRACE_MS,
    });
    switch (step.kind) {
      case 'drain-nodes':
        for (const node of step.nodes) await this.swarm.drain(node.id);
        this.emit({ event: 'pool-drain', pool: policy.pool, nodes: step.nodes.map((n) => n.hostname), from: decision.from, to: decision.to });
        return { decision: hold(step.describe), draining: { since: known ?? now, to: decision.to } };
      case 'wait-drained':
        return { decision: hold(step.describe), draining: { since: step.drainingSince, to: decision.to } };
      case 'update-stack':
        return { decision: { ...decision, reason: `${decision.reason}; ${step.describe}` }, ...(step.overdue.length > 0 ? { error: `${step.describe}: ${OVERDUE_HINT}` } : {}) };
    }
  }

  /** A shrink that is not wanted any more (work came back): the nodes it drained take tasks again. */
  private async undrain(policy: PoolPolicySettings, draining: NonNullable<PoolState['draining']>): Promise<void> {
    if (this.swarm === undefined) return;
    const nodes = goingPoolNodes(this.settings.stack, policy.pool, draining.to, await this.swarm.nodes(policy.pool));
    for (const node of nodes.filter((n) => n.availability === 'drain' && n.state.toLowerCase() === 'ready')) await this.swarm.activate(node.id);
  }


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
      let draining: PoolState['draining'];
      try {
        if (decision.action === 'shrink') {
          const drained = await this.drainFirst(policy, decision, memory, before, now);
          decision = drained.decision;
          draining = drained.draining;
          error = drained.error;
        } else if (before?.draining !== undefined) {
          await this.undrain(policy, before.draining);
        }
      } catch (e) {
        // the swarm could not be read or changed: nothing is asked of Heat this reading
        error = `draining before ${decision.action} ${decision.from}->${decision.to}: ${(e as Error).message}`;
        draining = before?.draining;
        decision = { ...decision, action: 'hold', to: decision.from, reason: `${decision.reason}, but the swarm did not answer`, memory: { ...decision.memory, lastChangeAt: memory.lastChangeAt } };
      }
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
        ...(draining !== undefined ? { draining } : {}),
        ...(error !== undefined ? { error } : {}),
      };
    }
    return out;
  }
}
