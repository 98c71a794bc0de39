import type { ChangePlan, PlanStep } from '../plan/change-plan.js';
import { OperationError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { pausePoint } from '../util/pause-point.js';

export interface StepApplier<Step extends PlanStep> {
  run(step: Step): Promise<void>;
  /** Undoes a step that completed, when a later one failed; steps without `undo` text are not passed here. */
  undo?(step: Step): Promise<void>;
}

export interface ApplyPlanOptions {
  log: Logger;
  /**
   * Called after each step completes (index from 0). The fake-cluster tests throw here to stand for a depl
   * process killed after that step: what the next command sees is then what a real kill would leave.
   */
  afterStep?: (index: number, step: PlanStep) => void | Promise<void>;
}

/**
 * Runs a plan's steps in order. When a step fails, the completed steps that declare an undo are undone in
 * reverse order and the first error is thrown (an undo that fails too is named in the error, never hidden).
 * With DEPL_PAUSE_AT=step-<n> (1-based) a real process stops after step n for the crash tests.
 */
export async function applyPlan<Step extends PlanStep>(plan: ChangePlan<Step>, applier: StepApplier<Step>, options: ApplyPlanOptions): Promise<void> {
  const done: Step[] = [];
  for (const [index, step] of plan.steps.entries()) {
    try {
      options.log.step(step.describe);
      await applier.run(step);
    } catch (error) {
      const undoFailures = await undoCompleted(done, applier, options.log);
      if (undoFailures.length === 0) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new OperationError(
        `${plan.command}: step ${index + 1} (${step.describe}) failed: ${reason}; undoing the earlier steps failed too: ${undoFailures.join('; ')}`,
        'Run the command again: it reads what is there and repairs or reports it.',
        'PLAN_UNDO_FAILED',
        { cause: error },
      );
    }
    done.push(step);
    await options.afterStep?.(index, step);
    await pausePoint(`step-${index + 1}`);
  }
}

async function undoCompleted<Step extends PlanStep>(done: Step[], applier: StepApplier<Step>, log: Logger): Promise<string[]> {
  const failures: string[] = [];
  if (!applier.undo) return failures;
  for (const step of [...done].reverse()) {
    if (!step.undo) continue;
    try {
      log.step(`undo: ${step.undo}`);
      await applier.undo(step);
    } catch (error) {
      failures.push(`${step.undo}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return failures;
}
