import { lstat, open, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createGzip } from 'node:zlib';
import dockerignore from '@balena/dockerignore';
import pLimit from 'p-limit';
import tar from 'tar-fs';
import { UserError } from '../errors.js';
import {
  contextExclusions, contextSecretsRefusal, contextWithinOperatorPath, isExcludedFromContext, secretByName, secretInHead, SNIFF_BYTES, SNIFF_MAX_SIZE,
  type ContextExclusions, type ContextSecret,
} from '../plan/build-context.js';
import { backupFilePattern, operatorPaths, type ProjectFacts } from '../plan/operator-files.js';

// The package is CommonJS with an ES-style `export default` in its types: at run time the import is the function.
const ignoreFactory = ((dockerignore as unknown as { default?: unknown }).default ?? dockerignore) as unknown as typeof dockerignore.default;

/** The file name the Dockerfile is sent under: it may live outside the context (depl's own templates/). */
export const CONTEXT_DOCKERFILE = '.depl.Dockerfile';

/** A build context as it will be sent: its folder and the files of it that go, checked (readBuildContext). */
export interface BuildContext {
  dir: string;
  /** Relative to dir, `/`-separated, sorted. */
  files: string[];
}

/**
 * The files of a build context that .dockerignore lets through and depl's own rules do not leave out (the
 * operator's files: src/plan/build-context.ts), as paths relative to the context. Ignored folders are not
 * walked at all (node_modules is large) unless an exception (`!pattern`) might re-include something inside
 * them; folders depl leaves out are never walked, whatever the exceptions.
 */
export async function contextFiles(contextDir: string, exclusions: ContextExclusions = contextExclusions(contextDir, [])): Promise<string[]> {
  const rules = await readFile(path.join(contextDir, '.dockerignore'), 'utf8').catch(() => '');
  const matcher = ignoreFactory({ ignorecase: false }).add(rules);
  const hasExceptions = rules.split('\n').some((line) => line.trim().startsWith('!'));
  const files: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(path.join(contextDir, relative), { withFileTypes: true });
    for (const entry of entries) {
      const name = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (isExcludedFromContext(name, exclusions)) continue;
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
 * Private keys and copies of depl's secrets file among the files, by name and by the first SNIFF_BYTES of each
 * regular file up to SNIFF_MAX_SIZE (why that is enough: src/plan/build-context.ts). Symbolic links are sent as
 * links, not as what they point to, so they are not read.
 */
export async function findContextSecrets(contextDir: string, files: readonly string[]): Promise<ContextSecret[]> {
  const limit = pLimit(16);
  const found = await Promise.all(files.map((file) => limit(async (): Promise<ContextSecret | null> => {
    const byName = secretByName(file);
    if (byName !== null) return byName;
    const full = path.join(contextDir, file);
    const info = await lstat(full).catch(() => null);
    if (info === null || !info.isFile() || info.size === 0 || info.size > SNIFF_MAX_SIZE) return null;
    const handle = await open(full, 'r').catch(() => null);
    if (handle === null) return null;
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(SNIFF_BYTES), 0, SNIFF_BYTES, 0);
      return secretInHead(file, buffer.subarray(0, bytesRead).toString('latin1'));
    } finally {
      await handle.close();
    }
  })));
  return found.filter((f): f is ContextSecret => f !== null);
}

/**
 * The context as it will be sent, refused (UserError, exit 2, before anything is built) when it lies inside the
 * operator's files or still carries a private key or depl's secrets file. `project` (depl.yaml's facts) names
 * the operator's files to leave out; without it (depl's own images, built from temporary folders) only the
 * rules that need no project apply. `label` names the context in messages (`services.web.build.context`).
 */
export async function readBuildContext(contextDir: string, options: { label: string; project?: ProjectFacts }): Promise<BuildContext> {
  const operator = options.project ? operatorPaths(options.project) : [];
  const within = contextWithinOperatorPath(contextDir, operator);
  if (within !== null) {
    throw new UserError(`${options.label}: ${contextDir} is inside ${within}, which holds depl's own files (keys, secrets, backups)`,
      'Point the build context at the app\'s folder; nothing was built.', 'BUILD_CONTEXT_OPERATOR_FILES');
  }
  const backups = options.project ? backupFilePattern(options.project.app, options.project.accessories) : null;
  const files = (await contextFiles(contextDir, contextExclusions(contextDir, operator, backups))).filter((f) => f !== CONTEXT_DOCKERFILE);
  const secrets = await findContextSecrets(contextDir, files);
  if (secrets.length > 0) {
    const { message, hint } = contextSecretsRefusal(options.label, contextDir, secrets);
    throw new UserError(message, hint, 'BUILD_CONTEXT_SECRET');
  }
  return { dir: contextDir, files };
}

/**
 * A gzipped tar of exactly the context's checked files, with the Dockerfile added as CONTEXT_DOCKERFILE
 * (Docker reads it from the context, wherever it lives on this machine).
 */
export async function packContext(context: BuildContext, dockerfileFile: string): Promise<{ stream: NodeJS.ReadableStream; files: number }> {
  const dockerfile = await readFile(dockerfileFile).catch(() => {
    throw new UserError(`no Dockerfile at ${dockerfileFile}`, 'Fix services.<name>.build.dockerfile in depl.yaml (relative to depl.yaml\'s folder).', 'DOCKERFILE_MISSING');
  });
  const pack = tar.pack(context.dir, {
    // a copy: tar-fs consumes the list it is given
    entries: [...context.files],
    finalize: false,
    finish: (p: { entry(header: object, data: Buffer): void; finalize(): void }) => {
      p.entry({ name: CONTEXT_DOCKERFILE, mode: 0o644, mtime: new Date(0) }, dockerfile);
      p.finalize();
    },
  });
  return { stream: pack.pipe(createGzip({ level: 1 })), files: context.files.length };
}
