import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type { DeplConfig } from '../config/schema.js';
import { OperationError, UserError } from '../errors.js';
import { parseDuration } from '../plan/duration.js';
import { hookEnvironment, hookExit, hookInvocation, type HookFacts, type HookName } from '../plan/hooks.js';
import type { Logger } from '../util/log.js';

/** Runs the operator's hooks (src/plan/hooks.ts); null when there is no such hook. */
export interface HookRunner {
  run(hook: HookName, facts: HookFacts): Promise<HookOutcome | null>;
}

export interface HookOutcome {
  hook: HookName;
  ok: boolean;
  /** `post-switch exited with 3`, for a post-hook that failed. */
  failure?: string;
}

/** The hooks of the app whose depl.yaml is in `root` (its folder), with its hooks.timeout. */
export function operatorHooks(root: string, config: Pick<DeplConfig, 'hooks'>, log: Logger): HookRunner {
  return localHooks(root, log, { timeoutMs: parseDuration(config.hooks.timeout, 'hooks.timeout') });
}

export const DEFAULT_HOOK_TIMEOUT_MS = 10 * 60_000;
/** How long a timed-out hook has to exit after SIGTERM before it is killed. */
const HOOK_KILL_GRACE_MS = 5_000;

const formatMs = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1_000 === 0 ? `${ms / 1_000}s` : `${ms}ms`);

/**
 * The hooks in `<root>/.depl/hooks/`, run on this machine with depl.yaml's folder as working directory. Their
 * output goes to stderr (stdout stays depl's, one JSON document with --json); stdin is the operator's; the
 * environment is an allowlist (src/plan/hooks.ts hookEnvironment): depl's secrets and credentials stay out.
 */
export function localHooks(root: string, log: Logger, options: { timeoutMs?: number; killGraceMs?: number } = {}): HookRunner {
  const timeoutMs = options.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  // a test's hook that ignores TERM is killed sooner than an operator's would be; the order (TERM, then KILL) is the same
  const killGraceMs = options.killGraceMs ?? HOOK_KILL_GRACE_MS;
  return {
    async run(hook, facts) {
      const inv = hookInvocation(root, hook, facts);
      const info = await stat(inv.file).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return null;
        throw error;
      });
      if (info === null) return null;
      if (!info.isFile()) throw new UserError(`the ${hook} hook ${inv.shown} is not a file`, `Make ${inv.shown} an executable file, or remove it.`, 'HOOK_NOT_A_FILE');
      const executable = await access(inv.file, constants.X_OK).then(() => true, () => false);
      if (!executable) throw new UserError(`the ${hook} hook ${inv.shown} is not executable, so depl cannot run it`, `chmod +x ${inv.shown}`, 'HOOK_NOT_EXECUTABLE');
      log.step(`hook ${hook}: ${inv.shown}`);
      let timedOut = false;
      const ended = await new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
        const child = spawn(inv.argv[0]!, inv.argv.slice(1), { cwd: root, env: hookEnvironment(process.env, inv), stdio: ['inherit', 2, 2] });
        // a hook that hangs would hold the cluster lock (renewed all the while) for good: stopped, TERM then KILL
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), killGraceMs).unref();
        }, timeoutMs);
        child.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal });
        });
      }).catch((error: NodeJS.ErrnoException) => {
        throw new UserError(`the ${hook} hook ${inv.shown} could not be started: ${error.message}`, `Start it with a #! line (e.g. #!/bin/sh) and make it executable: chmod +x ${inv.shown}`, 'HOOK_NOT_RUNNABLE');
      });
      if (ended.code === 0) return { hook, ok: true };
      const how = timedOut ? `did not finish within ${formatMs(timeoutMs)} and was stopped (hooks.timeout in depl.yaml)` : hookExit(ended.code, ended.signal);
      if (inv.pre) {
        throw new OperationError(
          `the ${hook} hook ${inv.shown} ${how}: depl ${facts.command} stopped before changing anything`,
          `Its output is above. Fix what it checks and run depl ${facts.command} again.`,
          timedOut ? 'HOOK_TIMEOUT' : 'HOOK_FAILED',
        );
      }
      const failure = `${hook} ${how}`;
      log.warn(`the ${hook} hook ${inv.shown} ${how}; depl ${facts.command} itself succeeded and is not undone`);
      return { hook, ok: false, failure };
    },
  };
}
