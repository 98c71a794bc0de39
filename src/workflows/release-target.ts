import { access } from 'node:fs/promises';
import path from 'node:path';
import type { DeplConfig } from '../config/schema.js';
import { readBuildContext, type BuildContext } from '../apply/build-context.js';
import { UserError } from '../errors.js';
import { checkVersionLabel } from '../names.js';
import type { ProjectFacts } from '../plan/operator-files.js';
import { branchLabel, serviceName, versionFromTime } from '../plan/names.js';
import { packagePath } from '../util/paths.js';

/**
 * Everything about a buildinst request that can be wrong by the user's hand, checked before anything is
 * built or changed: the version label (or branch), the names it makes, the build inputs on disk.
 */
export interface ReleaseTarget {
  version: string;
  /** The branch as given, for a per-branch staging deploy. */
  branch?: string;
}

export function releaseTarget(app: string, services: string[], options: { version?: string; branch?: string }, now: Date): ReleaseTarget {
  if (options.version !== undefined && options.branch !== undefined) {
    throw new UserError('--version and --branch cannot be used together', 'A branch deploy is labelled by the branch: pass one of them.', 'BAD_VERSION');
  }
  let target: ReleaseTarget;
  if (options.branch !== undefined) {
    const problem = branchNameProblem(options.branch);
    if (problem !== null) {
      throw new UserError(`branch ${JSON.stringify(options.branch)} ${problem}`, 'Pass the branch name as git has it, e.g. feature/login.', 'BAD_BRANCH');
    }
    const label = branchLabel(options.branch);
    if (label === null) {
      throw new UserError(`branch "${options.branch}" leaves no usable version label`, 'Use a branch name with letters or digits, e.g. feature/login.', 'BAD_BRANCH');
    }
    target = { version: label, branch: options.branch };
  } else if (options.version !== undefined) {
    const check = checkVersionLabel(options.version);
    if (!check.ok) {
      throw new UserError(`version "${options.version}" ${check.reason}`, 'A version is one DNS label, e.g. 20261122-130512 or v42.', 'BAD_VERSION');
    }
    target = { version: options.version };
  } else {
    target = { version: versionFromTime(now) };
  }
  for (const service of services) {
    const name = serviceName(app, target.version, service);
    if (name.length > 63) {
      throw new UserError(`service name "${name}" is longer than Docker's 63 characters`, 'Use a shorter --version, --branch or service name.', 'BAD_VERSION');
    }
  }
  return target;
}

/**
 * The branch name is recorded as given (a swarm label, the history, hooks' DEPL_BRANCH, log lines): git never
 * makes one with spaces or control characters, so such a name is a mistake, or an attempt to forge output.
 */
function branchNameProblem(branch: string): string | null {
  if (branch.length > 200) return 'is longer than 200 characters';
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(branch)) return 'contains spaces or control characters, which no git branch name has';
  return null;
}

export interface BuildInput {
  service: string;
  /** The files that will be sent, read and checked here, before anything is built or the cluster is reached. */
  context: BuildContext;
  dockerfile: string;
}

/** What the build inputs are read from: depl.yaml's folder, its services, and the operator's own files a context never sends. */
export interface BuildSource {
  root: string;
  services: DeplConfig['services'];
  facts: ProjectFacts;
}

/**
 * Build contexts are folders relative to depl.yaml. A Dockerfile is looked for there too, then among depl's
 * own templates (so `templates/crawler.Dockerfile` works from any project folder). Each context is read as it
 * will be sent, without the operator's files, and refused if it still holds a private key or secrets file.
 */
export async function resolveBuildInputs(source: BuildSource): Promise<BuildInput[]> {
  const inputs: BuildInput[] = [];
  for (const [service, svc] of Object.entries(source.services)) {
    if (!svc.build) continue;
    const contextDir = path.resolve(source.root, svc.build.context);
    if (!(await exists(contextDir))) {
      throw new UserError(`services.${service}.build.context: no folder at ${contextDir}`, 'Paths in depl.yaml are relative to its folder.', 'BUILD_CONTEXT_MISSING');
    }
    const candidates = [path.resolve(source.root, svc.build.dockerfile), packagePath(svc.build.dockerfile)];
    let dockerfile: string | undefined;
    for (const candidate of candidates) {
      if (await exists(candidate)) {
        dockerfile = candidate;
        break;
      }
    }
    if (dockerfile === undefined) {
      throw new UserError(`services.${service}.build.dockerfile: no file at ${candidates[0]}`, 'Paths in depl.yaml are relative to its folder.', 'DOCKERFILE_MISSING');
    }
    const context = await readBuildContext(contextDir, { label: `services.${service}.build.context`, project: source.facts });
    inputs.push({ service, context, dockerfile });
  }
  return inputs;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}
