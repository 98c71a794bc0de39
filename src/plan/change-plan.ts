/**
 * A change as data: what a command will do, step by step, decided before any of it is done. `--dry-run`
 * prints it (renderPlanText, or the object itself under --json) and the applier (src/workflows/apply-plan.ts)
 * runs exactly these steps, so what an operator previews is what runs. Each command's plan narrows `Step`
 * to its own kinds (a discriminated union on `kind`) and is computed by a pure function in src/plan.
 */
export interface PlanStep {
  /** What the applier does, e.g. `remove-service`; each command's plan narrows this to its own kinds. */
  kind: string;
  /** One line for a person: what this step changes. */
  describe: string;
  /** One line: how the step is undone when a later one fails; absent when there is nothing to undo. */
  undo?: string;
}

export interface ChangePlan<Step extends PlanStep = PlanStep> {
  /** The command as the operator would type it, e.g. `depl prune --keep 3`; recorded in the history. */
  command: string;
  /** What the plan decided and why, before its steps (kept versions and the reason, refused input...). */
  notes: string[];
  steps: Step[];
}

/** The text `--dry-run` prints: the notes, then the numbered steps with their undo. */
export function renderPlanText(plan: ChangePlan): string {
  const lines = [`Plan for ${plan.command}:`];
  for (const note of plan.notes) lines.push(`  ${note}`);
  if (plan.steps.length === 0) lines.push('  nothing to do');
  plan.steps.forEach((step, index) => {
    lines.push(`  ${index + 1}. ${step.describe}`);
    if (step.undo) lines.push(`     undo: ${step.undo}`);
  });
  return `${lines.join('\n')}\n`;
}
