import { UserError } from '../errors.js';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `500ms`, `30s`, `10m`, `1h`, `2d` -> milliseconds. `what` names the option in the error. */
export function parseDuration(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (match === null) throw new UserError(`${what} "${text}" is not a duration`, 'Write a number and a unit: 500ms, 30s, 10m, 1h, 2d.', 'BAD_DURATION');
  const value = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  if (value <= 0) throw new UserError(`${what} "${text}" must be more than zero`, undefined, 'BAD_DURATION');
  return value;
}

/** `1%`, `0.5%` or `1` (percent) -> a fraction 0..1. */
export function parsePercent(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)%?$/.exec(text.trim());
  const value = match ? Number(match[1]) : NaN;
  if (!Number.isFinite(value) || value < 0 || value > 100) throw new UserError(`${what} "${text}" is not a percentage from 0 to 100`, 'Write it like 1% or 0.5%.', 'BAD_PERCENT');
  return value / 100;
}
