import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { stdinFilesLine } from '../../../src/plan/stdin-files.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'depl-stdin-files-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the line with `sh` as a node would, feeding it `stdin`; resolves with the exit code. */
function run(line: string, stdin: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const child = execFile('sh', ['-c', line], (error) => resolve(error === null ? 0 : Number((error as { code?: number }).code ?? 1)));
    child.stdin!.end(stdin);
  });
}

const read = (name: string) => readFile(path.join(dir, name), 'utf8').catch(() => null);

it('writes each file from its own bytes of one stdin, in order, with its mode, keeping the replaced one when asked', async () => {
  await writeFile(path.join(dir, 'routing'), 'old table\n');
  const { line, stdin } = stdinFilesLine([
    { file: `${dir}/state/release.json`, content: '{"pending":1}\n', mode: 0o644 },
    { file: `${dir}/routing`, content: 'new table\n', mode: 0o640, keepPrevious: true },
  ]);
  expect(await run(line, stdin)).toBe(0);
  expect(await read('state/release.json')).toBe('{"pending":1}\n');
  expect(await read('routing')).toBe('new table\n');
  expect(await read('routing.previous')).toBe('old table\n');
  expect((await stat(path.join(dir, 'routing'))).mode & 0o777).toBe(0o640);
  expect(await read('routing.next')).toBeNull();
});

it('a stdin cut short (a connection dropped mid-way) writes the files it holds whole and leaves the rest as they were', async () => {
  await writeFile(path.join(dir, 'routing'), 'old table\n');
  const { line, stdin } = stdinFilesLine([
    { file: `${dir}/release.json`, content: '{"pending":1}\n', mode: 0o644 },
    { file: `${dir}/routing`, content: 'new table\n', mode: 0o644, keepPrevious: true },
  ]);
  expect(await run(line, stdin.subarray(0, 14 + 4))).not.toBe(0);
  expect(await read('release.json')).toBe('{"pending":1}\n');
  expect(await read('routing')).toBe('old table\n');
  expect(await read('routing.next')).toBeNull();
  // cut inside the first file: nothing is written
  await rm(path.join(dir, 'release.json'));
  expect(await run(line, stdin.subarray(0, 5))).not.toBe(0);
  expect(await read('release.json')).toBeNull();
  expect(await read('routing')).toBe('old table\n');
});
