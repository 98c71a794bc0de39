import type { InstalledVersion, VersionMarks } from './releases.js';

export type BranchKeepReason = 'live' | 'canary' | 'previous' | 'branch exists' | 'not a branch deploy';

export interface BranchPrunePlan {
  remove: InstalledVersion[];
  keep: { label: string; why: BranchKeepReason }[];
}

/**
 * `depl prune --branches a,b,c`: the per-branch staging deploys whose branch is not in the list (the branch
 * was deleted) are removed; deploys of listed branches and every version that is not a branch deploy stay,
 * and so do the live, canary and previous versions whatever they are. Branches are compared by name as git has
 * it (recorded on the deploy's services, `depl.branch`): `feature/x` and `feature-x` are two branches with two
 * deploys (src/plan/names.ts branchLabel), and one of them being deleted removes only its own.
 */
export function planBranchPrune(versions: InstalledVersion[], marks: VersionMarks, branches: string[]): BranchPrunePlan {
  const existing = new Set(branches);
  const protectedWhy = new Map<string, BranchKeepReason>();
  if (marks.previous !== undefined) protectedWhy.set(marks.previous, 'previous');
  if (marks.canary !== undefined) protectedWhy.set(marks.canary.version, 'canary');
  if (marks.live !== undefined) protectedWhy.set(marks.live, 'live');
  const plan: BranchPrunePlan = { remove: [], keep: [] };
  for (const version of versions) {
    const why = protectedWhy.get(version.label)
      ?? (version.branch === undefined ? 'not a branch deploy' : existing.has(version.branch) ? 'branch exists' : undefined);
    if (why !== undefined) plan.keep.push({ label: version.label, why });
    else plan.remove.push(version);
  }
  return plan;
}

/** `main, feature/x,,` -> ['main', 'feature/x']; the list must name at least one branch. */
export function parseBranchList(text: string): string[] {
  return [...new Set(text.split(/[,\s]+/).map((b) => b.trim()).filter((b) => b.length > 0))];
}
