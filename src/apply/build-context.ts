import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createGzip } from 'node:zlib';
import dockerignore from '@balena/dockerignore';
import tar from 'tar-fs';
import { UserError } from '../errors.js';

// The package is CommonJS with an ES-style `export default` in its types: at run time the import is the function.
const ignoreFactory = ((dockerignore as unknown as { default?: unknown }).default ?? dockerignore) as unknown as typeof dockerignore.default;

/** The file name the Dockerfile is sent under: it may live outside the context (depl's own templates/). */
export const CONTEXT_DOCKERFILE = '.depl.Dockerfile';

/**
 * The files of a build context that .dockerignore lets through, as paths relative to the context.
 * Ignored folders are not walked at all (node_modules is large) unless an exception (`!pattern`) might
 * re-include something inside them.
 */
export async function contextFiles(contextDir: string): Promise<string[]> {
  const rules = await readFile(path.join(contextDir, '.dockerignore'), 'utf8').catch(() => '');
  const matcher = ignoreFactory({ ignorecase: false }).add(rules);
  const hasExceptions = rules.split('\n').some((line) => line.trim().startsWith('!'));
  const files: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(path.join(contextDir, relative), { withFileTypes: true });
    for (const entry of entries) {
      const name = relative === '' ? entry.name : `${relative}/${entry.name}`;
      const ignored = matcher.ignores(name);
      if (entry.isDirectory()) {
        if (ignored && !hasExceptions) continue;
        await walk(name);
      } else if (!ignored) {
        files.push(name);
      }
    }
  };
  await walk('');
  return files.sort();
}

/**
 * A gzipped tar of the build context honouring .dockerignore, with the Dockerfile added as
 * CONTEXT_DOCKERFILE (Docker reads it from the context, wherever it lives on this machine).
 */
export async function packContext(contextDir: string, dockerfileFile: string): Promise<{ stream: NodeJS.ReadableStream; files: number }> {
  const dockerfile = await readFile(dockerfileFile).catch(() => {
    throw new UserError(`no Dockerfile at ${dockerfileFile}`, 'Fix services.<name>.build.dockerfile in depl.yaml (relative to depl.yaml\'s folder).', 'DOCKERFILE_MISSING');
  });
  const files = (await contextFiles(contextDir)).filter((f) => f !== CONTEXT_DOCKERFILE);
  const pack = tar.pack(contextDir, {
    entries: files,
    finalize: false,
    finish: (p: { entry(header: object, data: Buffer): void; finalize(): void }) => {
      p.entry({ name: CONTEXT_DOCKERFILE, mode: 0o644, mtime: new Date(0) }, dockerfile);
      p.finalize();
    },
  });
  return { stream: pack.pipe(createGzip({ level: 1 })), files: files.length };
}
