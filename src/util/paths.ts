import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (where templates/, heat/ and ansible/ live), from dist/ or src/ alike. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function packagePath(...parts: string[]): string {
  return path.join(packageRoot, ...parts);
}
