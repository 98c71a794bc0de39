import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextFiles } from '../../../src/apply/build-context.js';
import { demux } from '../../../src/apply/swarm.js';
import { packageRoot } from '../../../src/util/paths.js';

describe('build context', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-ctx-'));
    for (const file of ['a.txt', 'logs/x.log', 'logs/keep.log', 'src/m.ts', 'src/m.test.ts']) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), file);
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('honours .dockerignore patterns and exceptions', async () => {
    await writeFile(path.join(dir, '.dockerignore'), 'logs\n!logs/keep.log\n**/*.test.ts\n');
    expect(await contextFiles(dir)).toEqual(['.dockerignore', 'a.txt', 'logs/keep.log', 'src/m.ts']);
  });

  it('sends the repository without node_modules, tests or local state', async () => {
    const files = await contextFiles(packageRoot);
    expect(files).toContain('package.json');
    expect(files).toContain('package-lock.json');
    expect(files).toContain('crawler/package.json');
    expect(files.some((f) => f.startsWith('crawler/src/'))).toBe(true);
    expect(files.filter((f) => /^(node_modules|dist|test|\.git|\.depl)\/|(^|\/)(node_modules|dist)\//.test(f))).toEqual([]);
  });
});

describe('docker log framing', () => {
  it('joins stdout and stderr frames, and passes unframed text through', () => {
    const frame = (stream: number, text: string) => {
      const body = Buffer.from(text);
      const header = Buffer.alloc(8);
      header[0] = stream;
      header.writeUInt32BE(body.length, 4);
      return Buffer.concat([header, body]);
    };
    expect(demux(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n')]))).toBe('out\nerr\n');
    expect(demux(Buffer.from('plain text'))).toBe('plain text');
  });
});
