#!/usr/bin/env node
import { CommanderError } from 'commander';
import { buildProgram } from './program.js';
import type { CommandOutcome, GlobalOptions } from './context.js';

// `depl --help` loads only this file, program.ts and commander (bundled into one by scripts/bundle-cli.mjs);
// the rest is imported when a command runs, an error is reported or a signal arrives.

/** The only place that maps errors to exit codes and calls process.exit. */
async function main(argv: string[]): Promise<number> {
  let globals: GlobalOptions = {};
  let outcome: CommandOutcome | undefined;
  const program = buildProgram(async (load, ...args) => {
    globals = program.opts<GlobalOptions>();
    const { createContext } = await import('./context.js');
    const ctx = createContext(globals);
    const command = await load();
    outcome = (await command.default(ctx, ...args)) ?? undefined;
  });
  try {
    await program.parseAsync(argv);
    // a command's own exit code passed through (depl run / exec); depl's own failures are thrown, below
    return outcome ? passedThrough(outcome.exitCode) : 0;
  } catch (error) {
    return report(error, globals);
  }
}

function passedThrough(code: number): number {
  return Number.isInteger(code) && code >= 0 && code <= 255 ? code : 1;
}

async function report(error: unknown, globals: GlobalOptions): Promise<number> {
  if (error instanceof CommanderError) {
    // --help and --version end up here too, with exit code 0
    return error.exitCode === 0 ? 0 : 2;
  }
  const [{ isDeplError }, { redact }, { terminalJson, visibleLines }] = await Promise.all([import('../errors.js'), import('../util/redact.js'), import('../util/terminal-text.js')]);
  // messages echo input (names, paths, the cluster's answers): their control characters are shown escaped
  const shown = (s: string) => visibleLines(redact(s));
  const write = (s: string) => process.stderr.write(s + '\n');
  const colour = process.stderr.isTTY && !process.env.NO_COLOR;
  const red = (s: string) => (colour ? `\u001b[31m${s}\u001b[0m` : s);
  if (isDeplError(error)) {
    write(`${red('error:')} ${shown(error.message)}`);
    if (error.hint) write(`hint: ${shown(error.hint)}`);
    if (globals.verbose && error.cause) write(`cause: ${shown(String((error.cause as Error)?.stack ?? error.cause))}`);
    if (globals.json) process.stdout.write(redact(terminalJson({ error: { code: error.code, message: error.message, hint: error.hint ?? null } })) + '\n');
    return error.exitCode;
  }
  write(`${red('internal error:')} ${shown((error as Error)?.message ?? String(error))}`);
  if (globals.verbose) write(shown(String((error as Error)?.stack ?? '')));
  else write('This is a bug in depl. Run again with --verbose for the stack trace, and report it.');
  return 1;
}

/**
 * Ctrl-C and SIGTERM (a CI job cancelled, a terminal closed): give back what this run holds (the cluster
 * lock) and exit 130 / 143 as shells expect. A second signal exits at once.
 */
function onSignals(): void {
  let stopping = false;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(code);
      stopping = true;
      void (async () => {
        const [{ pendingInterruptCleanups, runInterruptCleanups }, { redact }, { visibleLines }] = await Promise.all([import('../util/interrupt.js'), import('../util/redact.js'), import('../util/terminal-text.js')]);
        const pending = pendingInterruptCleanups();
        process.stderr.write(`\ninterrupted (${signal})${pending.length > 0 ? `: ${pending.join(', ')}; press Ctrl-C again to exit without` : ''}\n`);
        await runInterruptCleanups(15_000, (message) => process.stderr.write(visibleLines(redact(`warning: ${message}`)) + '\n'));
        process.exit(code);
      })();
    });
  }
}

onSignals();

// If every handle closes while a command still awaits something, Node would exit 0 as if all went well.
process.on('beforeExit', () => {
  process.stderr.write('internal error: depl stopped with work unfinished (an awaited operation can never complete). This is a bug in depl; run again with --verbose and report it.\n');
  process.exit(1);
});

main(process.argv).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`internal error: ${String(error)}\n`);
    process.exit(1);
  },
);
