import type * as z from 'zod';
import { looksSecret } from '../util/secret.js';

/**
 * Turns zod issues into lines a person can act on: `services.api.port: expected number, got string`.
 * Unknown keys get a "did you mean" from the keys the schema allows at that place.
 */
export function describeIssues(schema: z.ZodType, issues: readonly z.core.$ZodIssue[]): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const allowed = keysAt(schema, issue.path);
      for (const key of issue.keys) {
        const where = formatPath([...issue.path, key]);
        const guess = closest(key, allowed);
        lines.push(`${where}: unknown key${guess ? ` (did you mean "${guess}"?)` : allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`);
      }
      continue;
    }
    if (issue.code === 'invalid_union' && 'errors' in issue && Array.isArray(issue.errors)) {
      const branchIssues = (issue.errors as z.core.$ZodIssue[][]).flat().map((i) => ({ ...i, path: [...issue.path, ...i.path] }));
      if (branchIssues.length > 0 && issue.errors.length === 1) {
        lines.push(...describeIssues(schema, branchIssues));
        continue;
      }
    }
    lines.push(`${formatPath(issue.path)}: ${humanMessage(issue)}`);
  }
  return [...new Set(lines)];
}

function humanMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') {
    // the value under a key like DB_PASSWORD is never printed, only its kind
    const hide = issue.path.some((p) => typeof p === 'string' && looksSecret(p));
    const got = issue.input === undefined ? 'nothing (required)' : hide ? describeKind(issue.input) : describeValue(issue.input);
    return `expected ${issue.expected}, got ${got}`;
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  if (issue.code === 'invalid_union' && 'note' in issue && issue.note === 'No matching discriminator') {
    return issue.message.replace(/^Invalid discriminator value\. Expected /, 'expected one of ');
  }
  return issue.message.replace(/^Invalid input: /, '');
}

function describeKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `a ${typeof value} (value not shown)`;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/**
 * `services.api.port`; a key that looks secret is written `env[DB_PASSWORD]`, so the line cannot read as
 * `DB_PASSWORD: <value>`, which the redaction of printed text would mask.
 */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => {
    if (typeof p === 'number') return `[${p}]`;
    if (i > 0 && looksSecret(String(p))) return `[${String(p)}]`;
    return `${i === 0 ? '' : '.'}${String(p)}`;
  }).join('');
}

type Def = { type: string; innerType?: z.ZodType; in?: z.ZodType; shape?: Record<string, z.ZodType>; valueType?: z.ZodType; options?: z.ZodType[]; element?: z.ZodType };

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** The object schemas reachable at `path` (several when a union is in the way). */
function objectsAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType[] {
  const def = defOf(schema);
  if (def.innerType) return objectsAt(def.innerType, path);
  if (def.type === 'pipe' && def.in) return objectsAt(def.in, path);
  if (def.type === 'union' && def.options) return def.options.flatMap((o) => objectsAt(o, path));
  if (path.length === 0) return def.type === 'object' ? [schema] : [];
  const [head, ...rest] = path;
  if (def.type === 'object' && def.shape && typeof head === 'string' && def.shape[head]) return objectsAt(def.shape[head], rest);
  if (def.type === 'record' && def.valueType) return objectsAt(def.valueType, rest);
  if (def.type === 'array' && def.element) return objectsAt(def.element, rest);
  return [];
}

function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const keys = objectsAt(schema, path).flatMap((o) => Object.keys(defOf(o).shape ?? {}));
  return [...new Set(keys)];
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = levenshtein(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
