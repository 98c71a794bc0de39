import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * depl.yaml's loaded form (LoadedConfig, and loadConfig that makes one) stops at the factories: a command cuts
 * it once into the port and the narrow inputs its workflow takes (src/workflows/command-inputs.ts), and the
 * adapters' slices (src/workflows/adapter-slices.ts). Only these factories take it. The list only shrinks:
 * a file that stops importing it must leave the list (the second test), and a new importer fails the first. No
 * adapter (src/apply) or planner (src/plan) takes it at all.
 */
const STILL_TAKE_LOADED_CONFIG = [
  // the factories: where depl.yaml is cut into the port, the cluster, the adapters' slices and the workflows' inputs
  'adapter-slices.ts',
  'cluster-port.ts',
  'cluster.ts',
  'command-inputs.ts',
].sort();

const src = path.resolve(import.meta.dirname, '../../src');

/** Names a file imports from src/config/load.ts (static or dynamic `import()` type references). */
function namesFromConfigLoad(text: string): string[] {
  const names: string[] = [];
  for (const match of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'[./]*\/config\/load\.js'/g)) {
    names.push(...match[1]!.split(',').map((n) => n.replace(/\btype\b/, '').trim()).filter((n) => n.length > 0));
  }
  // `import('../config/load.js').LoadedConfig` as a type, or a lazy import of the module (whatever it then takes)
  for (const match of text.matchAll(/import\('[./]*\/config\/load\.js'\)(?:\.(\w+))?/g)) names.push(match[1] ?? 'import()');
  return names;
}

/** The files under src/<folder> that import LoadedConfig or loadConfig, relative to that folder. */
async function filesTakingLoadedConfig(folder: 'workflows' | 'apply' | 'plan'): Promise<string[]> {
  const files = (await readdir(path.join(src, folder), { recursive: true })).filter((f) => f.endsWith('.ts'));
  const taking: string[] = [];
  for (const file of files) {
    const names = namesFromConfigLoad(await readFile(path.join(src, folder, file), 'utf8'));
    if (names.some((n) => n === 'LoadedConfig' || n === 'loadConfig' || n === 'import()')) taking.push(file.split(path.sep).join('/'));
  }
  return taking.sort();
}

describe('depl.yaml\'s loaded form in src/workflows, src/apply and src/plan', () => {
  it('is imported by no workflow file but the listed ones', async () => {
    const unexpected = (await filesTakingLoadedConfig('workflows')).filter((f) => !STILL_TAKE_LOADED_CONFIG.includes(f));
    expect(unexpected, 'take a narrow input cut in src/workflows/command-inputs.ts instead of LoadedConfig').toEqual([]);
  });

  it('lists no file that no longer imports it (the list shrinks)', async () => {
    const taking = new Set(await filesTakingLoadedConfig('workflows'));
    expect(STILL_TAKE_LOADED_CONFIG.filter((f) => !taking.has(f))).toEqual([]);
  });

  it('is imported by no adapter (src/apply) and no planner (src/plan): they take slices cut in src/workflows/adapter-slices.ts', async () => {
    expect(await filesTakingLoadedConfig('apply'), 'take a slice cut in src/workflows/adapter-slices.ts instead of LoadedConfig').toEqual([]);
    expect(await filesTakingLoadedConfig('plan')).toEqual([]);
  });

  it('recognises the forms of import it looks for', () => {
    expect(namesFromConfigLoad("import type { LoadedConfig } from '../config/load.js';")).toEqual(['LoadedConfig']);
    expect(namesFromConfigLoad("import { configPathFrom, loadConfig, type LoadedConfig } from '../../config/load.js';")).toEqual(['configPathFrom', 'loadConfig', 'LoadedConfig']);
    expect(namesFromConfigLoad("import { parseConfig } from '../config/load.js';")).toEqual(['parseConfig']);
    expect(namesFromConfigLoad("let x: import('../config/load.js').LoadedConfig;")).toEqual(['LoadedConfig']);
  });
});
