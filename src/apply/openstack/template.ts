import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../errors.js';
import { packagePath } from '../../util/paths.js';

/** provider.template relative to depl.yaml; the default falls back to the heat/stack.yaml shipped with depl. */
export async function readTemplate(root: string, template: string): Promise<string> {
  const candidates = [path.resolve(root, template)];
  if (template === 'heat/stack.yaml') candidates.push(packagePath('heat', 'stack.yaml'));
  for (const file of candidates) {
    try {
      return await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`cannot read ${file}: ${(error as Error).message}`, undefined, 'HEAT_TEMPLATE_UNREADABLE');
    }
  }
  throw new UserError(`no Heat template at ${candidates[0]}`, 'Set provider.template in depl.yaml to your HOT file (or remove it to use heat/stack.yaml).', 'HEAT_TEMPLATE_MISSING');
}
