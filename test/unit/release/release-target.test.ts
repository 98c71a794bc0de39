import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { parseConfig } from '../../../src/config/load.js';
import { packagePath } from '../../../src/util/paths.js';
import { releaseTarget, resolveBuildInputs } from '../../../src/workflows/release-target.js';
import { buildSource } from '../../../src/workflows/adapter-slices.js';
import { crawlerYaml } from './fixtures.js';

const now = new Date(Date.UTC(2026, 10, 22, 13, 5, 12));

function userError(fn: () => unknown): UserError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return error as UserError;
  }
  throw new Error('expected a UserError');
}

describe('release target', () => {
  it('defaults to the UTC time, takes --version, or the branch label', () => {
    expect(releaseTarget('crawler', ['api'], {}, now)).toEqual({ version: '20261122-130512' });
    expect(releaseTarget('crawler', ['api'], { version: 'v42' }, now)).toEqual({ version: 'v42' });
    expect(releaseTarget('crawler', ['api'], { branch: 'feature-login' }, now)).toEqual({ version: 'feature-login', branch: 'feature-login' });
    expect(releaseTarget('crawler', ['api'], { branch: 'feature/Login_Page' }, now)).toEqual({ version: expect.stringMatching(/^feature-login-page-[0-9a-f]{6}$/), branch: 'feature/Login_Page' });
  });

  it('gives branches whose slugs collide distinct labels', () => {
    const labels = ['feature/x', 'feature-x', 'Feature_X', 'feature.x'].map((branch) => releaseTarget('crawler', ['api'], { branch }, now).version);
    expect(new Set(labels).size).toBe(4);
  });

  it('refuses a branch name with spaces or control characters (it is recorded and printed as given)', () => {
    expect(userError(() => releaseTarget('crawler', ['api'], { branch: 'main\nDEPL_OK=1' }, now)).message).toBe('branch "main\\nDEPL_OK=1" contains spaces or control characters, which no git branch name has');
    expect(userError(() => releaseTarget('crawler', ['api'], { branch: 'a b' }, now)).exitCode).toBe(2);
  });

  it('rejects bad labels and branches with exit 2 and says why', () => {
    expect(userError(() => releaseTarget('crawler', ['api'], { version: '2026.11.22' }, now)).message).toMatch(/version "2026.11.22" may contain only/);
    expect(userError(() => releaseTarget('crawler', ['api'], { version: 'v1' + ';reboot' }, now)).exitCode).toBe(2);
    expect(userError(() => releaseTarget('crawler', ['api'], { branch: '__/__' }, now)).message).toMatch(/branch "__\/__" leaves no usable version label/);
    expect(userError(() => releaseTarget('crawler', ['api'], { version: 'a', branch: 'b' }, now)).message).toMatch(/cannot be used together/);
  });

  it('refuses a label that makes a service name longer than 63 characters', () => {
    const label = 'x'.repeat(40);
    expect(userError(() => releaseTarget('a-twenty-char-appnam', ['a-long-service-name1'], { version: label }, now)).message).toMatch(/longer than Docker's 63 characters/);
  });
});

describe('build inputs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-inputs-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds the context beside depl.yaml and falls back to depl\'s own templates for the Dockerfile', async () => {
    const inputs = await resolveBuildInputs(buildSource({ config: parseConfig(crawlerYaml), file: path.join(dir, 'depl.yaml'), root: dir }));
    expect(inputs).toEqual([{ service: 'api', context: { dir, files: [] }, dockerfile: packagePath('templates/crawler.Dockerfile') }]);
  });

  it('prefers a Dockerfile in the project, and rejects a missing context or Dockerfile', async () => {
    await mkdir(path.join(dir, 'templates'), { recursive: true });
    await writeFile(path.join(dir, 'templates', 'crawler.Dockerfile'), 'FROM scratch\n');
    const inputs = await resolveBuildInputs(buildSource({ config: parseConfig(crawlerYaml), file: path.join(dir, 'depl.yaml'), root: dir }));
    expect(inputs[0]!.dockerfile).toBe(path.join(dir, 'templates', 'crawler.Dockerfile'));
    const missing = parseConfig(crawlerYaml.replace('context: .', 'context: ./nowhere'));
    await expect(resolveBuildInputs(buildSource({ config: missing, file: path.join(dir, 'depl.yaml'), root: dir }))).rejects.toThrow(/services.api.build.context: no folder/);
    const noFile = parseConfig(crawlerYaml.replace('templates/crawler.Dockerfile', 'docker/Nope.Dockerfile'));
    await expect(resolveBuildInputs(buildSource({ config: noFile, file: path.join(dir, 'depl.yaml'), root: dir }))).rejects.toThrow(/services.api.build.dockerfile: no file/);
  });
});
