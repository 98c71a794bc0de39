import { onInterrupt } from '../util/interrupt.js';

/** What raw mode needs of the operator's terminal: process.stdin when it is a TTY. */
export interface RawModeInput {
  setRawMode(raw: boolean): unknown;
  pause(): unknown;
}

/** Where the process's exit is announced: `process`. */
export interface ExitEvents {
  once(event: 'exit', listener: () => void): unknown;
  off(event: 'exit', listener: () => void): unknown;
}

/**
 * Puts the operator's terminal in raw mode (every key, Ctrl-C included, goes to the command in the container)
 * and returns the one function that gives it back. Call it in a `finally`; it also runs if depl is interrupted
 * (Ctrl-C or SIGTERM to depl: main.ts runs the interrupt cleanups, then exits) or the process exits any other
 * way first. It runs once, whichever way comes first. A terminal left raw echoes nothing and ignores Ctrl-C
 * until the operator types `reset` blind.
 */
export function enterRawMode(input: RawModeInput, exits: ExitEvents = process): () => void {
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    exits.off('exit', restore);
    forgetInterrupt();
    input.setRawMode(false);
    input.pause();
  };
  const forgetInterrupt = onInterrupt(async () => restore(), 'restoring the terminal');
  exits.once('exit', restore);
  input.setRawMode(true);
  return restore;
}
