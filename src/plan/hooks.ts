/**
 * Hooks: executables in `.depl/hooks/` (next to depl.yaml) that depl runs on the operator's machine around a
 * change, after it took the cluster lock (so they never run while another depl holds it, and nothing changes
 * between a pre-hook and the step it guards). A pre-hook that exits non-zero stops the command before
 * anything changed; a post-hook's failure is reported and undoes nothing. A dry run runs none.
 *
 *   pre-build     buildinst, before building (and before anything on the cluster changes)
 *   pre-install   buildinst, images built and on the nodes, before the version's services are created
 *   post-install  buildinst, the version installed and healthy at <version>.<domain>
 *   pre-switch    switch, rollback and canary --promote: the version is healthy; before the edge changes
 *   post-switch   the same, once <domain> is served by the new live version
 *
 * Rollback and promote are switches: they run the switch hooks, and DEPL_COMMAND says which it was.
 */
export const HOOK_NAMES = ['pre-build', 'pre-install', 'post-install', 'pre-switch', 'post-switch'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

/** Relative to the folder of depl.yaml. */
export const HOOKS_DIR = '.depl/hooks';

export type HookCommand = 'buildinst' | 'switch' | 'rollback' | 'promote';

/** What a hook is told, as facts passed in (nothing here looks anything up). */
export interface HookFacts {
  app: string;
  domain: string;
  command: HookCommand;
  /** The version the command installs or makes live. */
  version: string;
  /** The version that was live when the command started (none: empty). */
  previous: string | null;
  /** The version live while the hook runs: the old one in pre-switch, the new one in post-switch. */
  live: string | null;
  /** `user@host` of the operator, as the release history records it. */
  performer: string;
  branch?: string;
}

export interface HookInvocation {
  hook: HookName;
  /** Absolute path of the executable. */
  file: string;
  /** As the operator would type it from depl.yaml's folder, for messages. */
  shown: string;
  argv: string[];
  /** The facts, set over the few variables a hook inherits (hookEnvironment); every DEPL_* key is always set (empty when it does not apply). */
  env: Record<string, string>;
  /** A pre-hook's failure stops the command; a post-hook's is only reported. */
  pre: boolean;
}

export function hookInvocation(root: string, hook: HookName, facts: HookFacts): HookInvocation {
  const shown = `${HOOKS_DIR}/${hook}`;
  const file = `${root.replace(/\/+$/, '')}/${shown}`;
  return {
    hook,
    file,
    shown,
    argv: [file],
    env: {
      DEPL_HOOK: hook,
      DEPL_APP: facts.app,
      DEPL_DOMAIN: facts.domain,
      DEPL_COMMAND: facts.command,
      DEPL_VERSION: facts.version,
      DEPL_PREVIOUS: facts.previous ?? '',
      DEPL_LIVE: facts.live ?? '',
      DEPL_PERFORMER: facts.performer,
      DEPL_BRANCH: facts.branch ?? '',
    },
    pre: hook.startsWith('pre-'),
  };
}

/**
 * What a hook inherits from depl's own environment: only these, never DEPL_SECRET_*, OS_* (OpenStack
 * credentials), tokens, SSH_AUTH_SOCK or anything else depl was started with. A hook that needs a credential
 * reads it from its own file.
 */
export const HOOK_INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TERM', 'USER', 'LOGNAME', 'SHELL', 'TZ', 'TMPDIR'] as const;

/** The whole environment a hook runs with: the allowlisted variables depl has, then the hook's DEPL_* facts. */
export function hookEnvironment(inherited: Readonly<Record<string, string | undefined>>, invocation: Pick<HookInvocation, 'env'>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of HOOK_INHERITED_ENV) {
    const value = inherited[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...invocation.env };
}

/** How a hook ended, in words: `exited with 3`, `was killed by SIGTERM`. */
export function hookExit(code: number | null, signal: string | null): string {
  return code !== null ? `exited with ${code}` : `was killed by ${signal ?? 'a signal'}`;
}
