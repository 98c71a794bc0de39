import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { enterRawMode } from '../../src/apply/terminal.js';
import { pendingInterruptCleanups, runInterruptCleanups } from '../../src/util/interrupt.js';

/** A terminal as `depl exec` uses it: records each raw-mode switch, and whether it still reads input. */
function terminal() {
  const calls: string[] = [];
  return {
    calls,
    setRawMode(raw: boolean) { calls.push(raw ? 'raw' : 'cooked'); },
    pause() { calls.push('pause'); },
  };
}

describe('depl exec gives the terminal back on every way out', () => {
  const exits = new EventEmitter();
  afterEach(() => {
    exits.removeAllListeners();
  });

  it('when the command fails or the connection drops: the finally restores it once', async () => {
    const tty = terminal();
    const attached = async () => {
      const restore = enterRawMode(tty, exits);
      try {
        throw new Error('the connection to node-2 dropped');
      } finally {
        restore();
      }
    };
    await expect(attached()).rejects.toThrow(/dropped/);
    expect(tty.calls).toEqual(['raw', 'cooked', 'pause']);
    expect(exits.listenerCount('exit')).toBe(0);
    expect(pendingInterruptCleanups()).not.toContain('restoring the terminal');
  });

  it('when depl is interrupted (Ctrl-C, SIGTERM): the interrupt cleanups restore it, and the later finally does nothing', async () => {
    const tty = terminal();
    const restore = enterRawMode(tty, exits);
    expect(pendingInterruptCleanups()).toEqual(['restoring the terminal']);
    await runInterruptCleanups(1000, (message) => { throw new Error(message); });
    expect(tty.calls).toEqual(['raw', 'cooked', 'pause']);
    restore();
    expect(tty.calls).toEqual(['raw', 'cooked', 'pause']);
    expect(exits.listenerCount('exit')).toBe(0);
  });

  it('when the process exits any other way while the TTY is attached', () => {
    const tty = terminal();
    enterRawMode(tty, exits);
    exits.emit('exit');
    expect(tty.calls).toEqual(['raw', 'cooked', 'pause']);
    expect(pendingInterruptCleanups()).not.toContain('restoring the terminal');
  });
});
