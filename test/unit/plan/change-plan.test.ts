import { describe, expect, it } from 'vitest';
import { renderPlanText, type ChangePlan } from '../../../src/plan/change-plan.js';
import { silentLogger } from '../../../src/util/log.js';
import { applyPlan } from '../../../src/workflows/apply-plan.js';

type Step = { kind: 'add' | 'fail'; describe: string; undo?: string; value: number };

const plan = (steps: Step[]): ChangePlan<Step> => ({ command: 'depl test', notes: ['kept: 1 (live)'], steps });

describe('change plans', () => {
  it('prints notes and numbered steps with their undo', () => {
    const text = renderPlanText(plan([{ kind: 'add', describe: 'add 1', undo: 'remove 1', value: 1 }, { kind: 'add', describe: 'add 2', value: 2 }]));
    expect(text).toBe('Plan for depl test:\n  kept: 1 (live)\n  1. add 1\n     undo: remove 1\n  2. add 2\n');
    expect(renderPlanText(plan([]))).toContain('nothing to do');
  });

  it('runs the steps in order and undoes the completed ones in reverse when one fails', async () => {
    const log: string[] = [];
    const applier = {
      async run(step: Step) {
        if (step.kind === 'fail') throw new Error('boom');
        log.push(`run ${step.value}`);
      },
      async undo(step: Step) {
        log.push(`undo ${step.value}`);
      },
    };
    const steps: Step[] = [
      { kind: 'add', describe: 'a1', undo: 'u1', value: 1 },
      { kind: 'add', describe: 'a2', value: 2 },
      { kind: 'add', describe: 'a3', undo: 'u3', value: 3 },
      { kind: 'fail', describe: 'f', value: 4 },
    ];
    await expect(applyPlan(plan(steps), applier, { log: silentLogger })).rejects.toThrow('boom');
    expect(log).toEqual(['run 1', 'run 2', 'run 3', 'undo 3', 'undo 1']);
  });

  it('names an undo that fails instead of hiding it', async () => {
    const applier = {
      async run(step: Step) {
        if (step.kind === 'fail') throw new Error('boom');
      },
      async undo() {
        throw new Error('node gone');
      },
    };
    const steps: Step[] = [{ kind: 'add', describe: 'a1', undo: 'u1', value: 1 }, { kind: 'fail', describe: 'f', value: 2 }];
    await expect(applyPlan(plan(steps), applier, { log: silentLogger })).rejects.toMatchObject({ code: 'PLAN_UNDO_FAILED', message: expect.stringContaining('u1: node gone') });
  });

  it('stops where a test kills it, leaving the later steps undone and nothing undone', async () => {
    const ran: number[] = [];
    const applier = { async run(step: Step) { ran.push(step.value); }, async undo() { throw new Error('must not undo after a kill'); } };
    const steps: Step[] = [1, 2, 3].map((value) => ({ kind: 'add' as const, describe: `a${value}`, undo: `u${value}`, value }));
    const killed = new Error('killed');
    await expect(applyPlan(plan(steps), applier, { log: silentLogger, afterStep: (index) => { if (index === 1) throw killed; } })).rejects.toBe(killed);
    expect(ran).toEqual([1, 2]);
  });
});
