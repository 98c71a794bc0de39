import { UserError } from '../errors.js';
import type { StatsReport, VersionStats } from './stats.js';

/**
 * One step of an automatic canary: given the figures of the step's window, keep going or go back to 0%.
 * The decision carries the figures, so what the operator reads is what decided.
 */
export interface CanaryThresholds {
  /** Highest tolerated 5xx rate of the canary, 0..1. */
  maxErrorRate: number;
  maxP95Ms: number;
  /** Fewer canary requests than this in a step cannot show anything: the canary is not promoted on them. */
  minRequests: number;
}

export interface CanaryDecision {
  action: 'continue' | 'abort';
  reason: string;
  canary: VersionStats | null;
  live: VersionStats | null;
}

export function decideCanaryStep(report: StatsReport, canaryVersion: string, liveVersion: string, thresholds: CanaryThresholds): CanaryDecision {
  const canary = report.versions.find((v) => v.version === canaryVersion) ?? null;
  const live = report.versions.find((v) => v.version === liveVersion) ?? null;
  const seen = canary?.requests ?? 0;
  if (canary === null || seen < thresholds.minRequests) {
    return { action: 'abort', reason: `only ${seen} requests reached canary ${canaryVersion}; at least ${thresholds.minRequests} are needed to judge it`, canary, live };
  }
  const compared = live !== null ? ` (live ${liveVersion}: ${pct(live.errorRate)} 5xx, p95 ${live.p95Ms}ms)` : '';
  if (canary.errorRate > thresholds.maxErrorRate) {
    return {
      action: 'abort',
      reason: `canary ${canaryVersion} 5xx rate ${pct(canary.errorRate)} (${canary.errors} of ${canary.requests}) is above the limit ${pct(thresholds.maxErrorRate)}${compared}`,
      canary,
      live,
    };
  }
  if (canary.p95Ms > thresholds.maxP95Ms) {
    return { action: 'abort', reason: `canary ${canaryVersion} p95 latency ${canary.p95Ms}ms is above the limit ${thresholds.maxP95Ms}ms${compared}`, canary, live };
  }
  return {
    action: 'continue',
    reason: `canary ${canaryVersion}: ${canary.requests} requests, ${pct(canary.errorRate)} 5xx, p95 ${canary.p95Ms}ms, within limits${compared}`,
    canary,
    live,
  };
}

/** `10,25,50,100` -> [10, 25, 50, 100]: rising weights from 1 to 100. */
export function parseSteps(text: string): number[] {
  const steps = text.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => Number(s.replace(/%$/, '')));
  if (steps.length === 0 || steps.some((n) => !Number.isFinite(n) || n <= 0 || n > 100)) {
    throw new UserError(`--steps "${text}" must be a comma-separated list of percentages from 1 to 100`, 'For example: --steps 10,25,50,100', 'BAD_STEPS');
  }
  for (let i = 1; i < steps.length; i++) {
    if ((steps[i] ?? 0) <= (steps[i - 1] ?? 0)) throw new UserError(`--steps "${text}" must rise step by step`, 'For example: --steps 10,25,50,100', 'BAD_STEPS');
  }
  return steps;
}

function pct(fraction: number): string {
  return `${Number((fraction * 100).toFixed(2))}%`;
}
