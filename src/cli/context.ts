import { createLogger, type Logger } from '../util/log.js';
import { redact } from '../util/redact.js';
import { terminalJson, visibleLines } from '../util/terminal-text.js';

export interface GlobalOptions {
  config?: string;
  json?: boolean;
  yes?: boolean;
  verbose?: boolean;
}

/**
 * What a command returns when its exit code is not its own: `depl run` and `depl exec` pass the command's
 * exit code through (0-255). depl's own failures are thrown as DeplErrors (1 or 2); src/cli/main.ts maps both.
 */
export interface CommandOutcome {
  exitCode: number;
}

export interface CommandContext {
  globals: GlobalOptions;
  log: Logger;
  /** True when we may ask questions: a TTY on stdin and stderr, and no --yes. */
  interactive: boolean;
  /** Progress animations only on a TTY, and never in --json mode. */
  progress: boolean;
  /** The command's result: JSON on stdout with --json, else the human text on stdout. */
  result(data: unknown, human: string): void;
}

export function createContext(globals: GlobalOptions): CommandContext {
  const log = createLogger({ verbose: globals.verbose });
  const stderrTty = Boolean(process.stderr.isTTY);
  return {
    globals,
    log,
    interactive: !globals.yes && Boolean(process.stdin.isTTY) && stderrTty,
    progress: stderrTty && !globals.json,
    result(data, human) {
      // names and values from outside (the cluster, depl.yaml, a Compose file) cannot drive the terminal
      if (globals.json) process.stdout.write(redact(terminalJson(data, 2)) + '\n');
      else if (human.length > 0) process.stdout.write(visibleLines(redact(human)) + (human.endsWith('\n') ? '' : '\n'));
    },
  };
}
