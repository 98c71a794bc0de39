import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePrepareAnswer, prepareLayoutCommand } from '../../../src/plan/state-layout.js';

/** The layout move's first step, run by real sh on a folder of this machine: it says whether it moved anything. */
const roots: string[] = [];
afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

async function prepared(setUp: (dir: string) => Promise<void>) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'depl-layout-'));
  roots.push(root);
  const dir = path.join(root, 'shop');
  await mkdir(path.join(dir, 'lease'), { recursive: true });
  await setUp(dir);
  const [command, ...args] = prepareLayoutCommand(root, 'shop', '2026-12-07T09:30:00Z') as [string, ...string[]];
  return { dir, answer: parsePrepareAnswer((await execa(command, args)).stdout) };
}

describe('state layout 2, its first step', () => {
  it('on a new cluster\'s app folder moves nothing and says so (no "moves to state layout 2" line on a fresh cluster)', async () => {
    const { dir, answer } = await prepared(async () => {});
    expect(answer).toEqual({ status: 'prepared', moved: false });
    // the earlier lock's place is still fenced off for an earlier depl
    expect(JSON.parse(await readFile(path.join(dir, 'lock', 'holder.json'), 'utf8'))).toMatchObject({ token: 'moved-to-lease' });
  });

  it('on a folder an earlier depl left moves its ACME account and says it moved', async () => {
    const { dir, answer } = await prepared((d) => writeFile(path.join(d, 'tls-account.json'), '{"url":"https://acme.test/acct/7"}'));
    expect(answer).toEqual({ status: 'prepared', moved: true });
    expect(await readFile(path.join(dir, 'tls', 'account.json'), 'utf8')).toBe('{"url":"https://acme.test/acct/7"}');
  });

  it('run again after it moved (a kill before the layout file was written) finds its own fence and moves nothing more', async () => {
    const { dir } = await prepared((d) => writeFile(path.join(d, 'tls-renewal.json'), '{}'));
    const [command, ...args] = prepareLayoutCommand(path.dirname(dir), 'shop', '2026-12-07T09:31:00Z') as [string, ...string[]];
    // its own never-expiring lease at lock/ is what an earlier depl would have left: it counts as moved, not held
    expect(parsePrepareAnswer((await execa(command, args)).stdout)).toEqual({ status: 'prepared', moved: true });
  });
});
