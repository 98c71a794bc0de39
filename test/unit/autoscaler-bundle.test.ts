import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { repoRoot } from '../support/cli.js';

/**
 * The autoscale controller runs in the swarm as one bundled ES module (scripts/bundle-autoscaler.mjs). A
 * CommonJS dependency that found its way into it once crashed it before its first line ran ("Dynamic require of
 * process is not supported"), which only a real cluster showed. Bundled and started here, it must get as far as
 * reading its arguments.
 */
it('the bundled autoscaler starts and asks for its settings', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'depl-autoscaler-'));
  try {
    const outfile = path.join(dir, 'autoscaler.mjs');
    await execa('node', [path.join(repoRoot, 'scripts', 'bundle-autoscaler.mjs')], { env: { DEPL_AUTOSCALER_OUTFILE: outfile } });
    const started = await execa('node', [outfile], { reject: false });
    expect(started.stderr).not.toMatch(/Dynamic require/);
    expect({ exitCode: started.exitCode, stderr: started.stderr.trim() }).toEqual({ exitCode: 1, stderr: 'autoscaler: missing --settings <json>' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
