import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { UserError } from '../errors.js';
import { configSchema, type DeplConfig } from './schema.js';
import { describeIssues } from './describe-issues.js';

export interface LoadedConfig {
  config: DeplConfig;
  /** Absolute path of the depl.yaml that was read. */
  file: string;
  /** Folder of depl.yaml: relative paths in it (build contexts, ssh key, template) are resolved from here. */
  root: string;
}

export function configPathFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag ?? env.DEPL_CONFIG ?? 'depl.yaml');
}

export async function loadConfig(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new UserError(`no config file at ${file}`, "Run 'depl init' to write one, or pass --config <file>.", 'CONFIG_MISSING');
    }
    throw new UserError(`cannot read ${file}: ${(error as Error).message}`, undefined, 'CONFIG_UNREADABLE');
  }
  return { config: parseConfig(text, file), file, root: path.dirname(file) };
}

/** Parses and validates depl.yaml text; every problem is reported at once, each with its path. */
export function parseConfig(text: string, file = 'depl.yaml'): DeplConfig {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    const lines = document.errors.map((e) => `${file}: ${e.message.split('\n')[0]}`);
    throw new UserError(`${file} is not valid YAML:\n  ${lines.join('\n  ')}`, 'Fix the YAML syntax at the line shown.', 'CONFIG_YAML');
  }
  const raw: unknown = document.toJS() ?? {};
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const lines = describeIssues(configSchema, result.error.issues);
    throw new UserError(
      `${file} has ${lines.length} problem${lines.length === 1 ? '' : 's'}:\n  ${lines.join('\n  ')}`,
      'Fix each entry above; `depl init` writes a commented example.',
      'CONFIG_INVALID',
    );
  }
  return result.data;
}
