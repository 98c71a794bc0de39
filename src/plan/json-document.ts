import type { z } from 'zod';

/**
 * A JSON file depl keeps on the manager, read back against its schema: the value, or one line saying what is wrong
 * with it (`not JSON`, or each schema issue as `path: message`) for the error that names the file.
 */
export function parseJsonDocument<T extends z.ZodTypeAny>(schema: T, text: string): { ok: true; value: z.infer<T> } | { ok: false; problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not JSON' };
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) return { ok: false, problem: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
  return { ok: true, value: parsed.data };
}
