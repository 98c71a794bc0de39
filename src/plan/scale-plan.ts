import type { ErrorCode } from '../error-codes.js';
import type { ChangePlan } from './change-plan.js';
import { describeChange, planRelease, type InstalledVersion, type ReleaseState } from './release-state.js';
import { describeScale, type ScaleTarget } from './scale.js';

/**
 * `depl scale worker=5 [--version V]` as a plan: the release transition (planScale in release-state.ts) decides
 * the targets and whether they become the app's scale; the plan sets and records them in one release change
 * (intent first, as every change: a kill inside it is repaired by the next command), then waits for the swarm
 * to run that many tasks. A scale already in place plans only the wait, so a run killed after its first step
 * is finished by the next one.
 */

export interface ScaleRequest {
  replicas: Record<string, number>;
  version?: string;
}

export type ScaleStep =
  | { kind: 'release-change'; describe: string; request: { kind: 'scale'; replicas: Record<string, number>; version?: string }; targets: ScaleTarget[] }
  | { kind: 'wait-for-replicas'; describe: string; targets: ScaleTarget[] };

export interface ScalePlan extends ChangePlan<ScaleStep> {
  version: string;
  /** The replicas become the app's scale (the version is live). */
  recorded: boolean;
  /** The app's scale after the plan. */
  scale: Record<string, number>;
  targets: ScaleTarget[];
}

export type ScalePlanned = { ok: true; plan: ScalePlan } | { ok: false; message: string; hint: string; code: ErrorCode };

export function scaleCommandLine(request: ScaleRequest): string {
  return `depl scale ${Object.entries(request.replicas).map(([s, n]) => `${s}=${n}`).join(' ')}${request.version !== undefined ? ` --version ${request.version}` : ''}`;
}

export function planScaleChange(read: { state: ReleaseState; installed: InstalledVersion[]; request: ScaleRequest }): ScalePlanned {
  const { state, installed, request } = read;
  const release = { kind: 'scale' as const, replicas: request.replicas, ...(request.version !== undefined ? { version: request.version } : {}) };
  // `at` and `by` only reach the history entry, which the applier's release change writes with its own
  const planned = planRelease(state, release, { installed, at: new Date(0).toISOString(), by: '' });
  if (!planned.ok) return { ok: false, message: planned.refusal.message, hint: planned.refusal.hint ?? 'See depl scale --help.', code: planned.refusal.code };
  const version = request.version ?? state.live!;
  const targets = planned.scale ?? [];
  const recorded = version === state.live;
  const notes = describeChange(state, planned.state, installed, planned.installed);
  if (planned.unchanged) notes.push(`${version} already runs ${describeScale(request.replicas)}: nothing to set`);
  if (!recorded) notes.push(`${version} is not live: not recorded as the app's scale`);
  const steps: ScaleStep[] = [];
  if (!planned.unchanged) {
    const changes = targets.filter((t) => t.from !== t.replicas).map((t) => `${t.service} ${t.from ?? '?'} -> ${t.replicas}`);
    const what = changes.length > 0 ? `set replicas ${changes.join(', ')}` : 'set no replicas';
    steps.push({ kind: 'release-change', request: release, targets, describe: `${what}${recorded ? ` and record ${describeScale(planned.state.scale)} as the app's scale` : ' and record it in the history'}` });
  }
  if (targets.length > 0) steps.push({ kind: 'wait-for-replicas', targets, describe: `wait until ${targets.map((t) => `${t.service} runs ${t.replicas}`).join(', ')}` });
  return { ok: true, plan: { command: scaleCommandLine(request), notes, steps, version, recorded, scale: planned.state.scale, targets } };
}
