import { describe, expect, it } from 'vitest';
import { parseBranchList, planBranchPrune } from '../../../src/plan/branch-prune.js';
import type { InstalledVersion } from '../../../src/plan/releases.js';

const v = (label: string, branch?: string): InstalledVersion => ({ label, createdAt: `2026-11-29T00:00:0${label.length % 10}Z`, services: [`app-${label}-web`], ...(branch ? { branch } : {}) });

describe('depl prune --branches', () => {
  const versions = [v('20261129-120000'), v('feature-login', 'Feature/Login'), v('fix-typo', 'fix/typo'), v('old-idea', 'old-idea'), v('live-branch', 'live-branch')];

  it('removes deploys of branches that no longer exist, keeps listed branches (by name) and non-branch versions', () => {
    const plan = planBranchPrune(versions, { live: 'live-branch' }, ['main', 'Feature/Login']);
    expect(plan.remove.map((r) => r.label)).toEqual(['fix-typo', 'old-idea']);
    expect(plan.keep).toEqual([
      { label: '20261129-120000', why: 'not a branch deploy' },
      { label: 'feature-login', why: 'branch exists' },
      { label: 'live-branch', why: 'live' },
    ]);
  });

  it('tells apart branches whose names slug alike: only the deleted one goes', () => {
    const twins = [v('feature-x-217d2b', 'feature/x'), v('feature-x', 'feature-x')];
    expect(planBranchPrune(twins, {}, ['feature-x']).remove.map((r) => r.label)).toEqual(['feature-x-217d2b']);
    expect(planBranchPrune(twins, {}, ['feature/x']).remove.map((r) => r.label)).toEqual(['feature-x']);
  });

  it('never removes the live, canary or previous version, even of a deleted branch', () => {
    const plan = planBranchPrune(versions, { live: '20261129-120000', previous: 'fix-typo', canary: { version: 'old-idea', weight: 10 } }, ['main']);
    expect(plan.remove.map((r) => r.label)).toEqual(['feature-login', 'live-branch']);
  });

  it('reads a comma- or space-separated list', () => {
    expect(parseBranchList('main, feature/x,,main  dev')).toEqual(['main', 'feature/x', 'dev']);
    expect(parseBranchList(' , ')).toEqual([]);
  });
});
