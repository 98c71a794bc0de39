import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from '../support/cli.js';

/**
 * The injections measured in issue 23, run as a user would: `depl init --from compose.yaml` on a Compose file
 * whose keys and values end their comment line and go on as depl.yaml keys. (No cluster: nothing but init runs.)
 */
describe('depl init --from a Compose file that tries to write depl.yaml keys', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-init-inject-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The top-level keys depl init writes for a Compose app with no accessories: nothing more, in this order. */
  const IMPORTED_KEYS = ['app', 'domain', 'provider', 'ssh', 'bootstrap', 'images', 'services', 'config'];
  const init = async (name: string, compose: string) => {
    await writeFile(path.join(dir, `${name}.yaml`), compose);
    const config = path.join(dir, `${name}-depl.yaml`);
    const run = await runCli(['init', '--from', `${name}.yaml`, '--app', 'shop', '--domain', 'shop.localhost', '--config', config], { cwd: dir });
    return { run, text: await readFile(config, 'utf8').catch(() => '') };
  };

  it('writes no registry: or network: key from a value that breaks its comment line', async () => {
    const { run, text } = await init('registry', [
      'services:',
      '  web:',
      '    build: .',
      '    environment:',
      '      GREETING: "hi ${NAME}\\nregistry: {url: evil.example:5000}\\nnetwork: {encrypted: false}\\n#"',
      '    ports: ["3000"]',
      '',
    ].join('\n'));
    expect(run.exitCode, run.stderr).toBe(0);
    const written = parse(text) as Record<string, { web: { env: Record<string, string> } }>;
    expect(Object.keys(written)).toEqual(IMPORTED_KEYS);
    expect(written.services!.web.env.GREETING).toBe('hi ${NAME}\nregistry: {url: evil.example:5000}\nnetwork: {encrypted: false}\n#');
  });

  it('writes no hooks: key from a key that breaks its comment line, and prints the notes with escapes', async () => {
    const { run, text } = await init('hooks', [
      'services:',
      '  web:',
      '    build: .',
      '    ports: ["3000"]',
      '    "x-note\\nhooks:\\n  timeout: 1s\\n#\\u001b[2J": 1',
      '"top\\rnot a key": {}',
      '',
    ].join('\n'));
    expect(run.exitCode, run.stderr).toBe(0);
    expect(Object.keys(parse(text) as object)).toEqual(IMPORTED_KEYS);
    expect(run.stdout).toContain('    - services.web.x-note\\nhooks:\\n  timeout: 1s\\n#\\u001b[2J: is not a key of the Compose Specification depl knows');
    expect(run.stdout).toContain('    - top\\rnot a key: has no depl equivalent');
    expect(run.stdout).not.toContain('\r');
    expect(run.stdout).not.toContain('\u001b');
    const status = await runCli(['status', '--json', '--config', path.join(dir, 'hooks-depl.yaml')], { cwd: dir });
    expect(status.stderr).not.toMatch(/depl\.yaml has \d+ problem/); // the file loads; only the missing cluster stops status
  });
});
