import { wantsColor, type Logger } from '../util/log.js';
import { redact } from '../util/redact.js';
import { visible } from '../util/terminal-text.js';

/**
 * Progress of node-up on a TTY: one line per node (and one for the swarm), each rewritten in place with
 * that node's latest step, so parallel nodes read as a table instead of interleaved lines. Anything
 * that is not a `<node>: <step>` line, and every warning or error, is printed above the table.
 * Without a TTY the plain logger is used instead and every step stays on its own line.
 */
export function nodeProgressLogger(base: Logger, stream: NodeJS.WriteStream = process.stderr): Logger & { done(): void } {
  const rows = new Map<string, string>();
  let drawn = 0;
  const color = wantsColor(stream);
  const dim = (s: string) => (color ? `\u001b[36m${s}\u001b[0m` : s);
  const clear = () => {
    if (drawn > 0) stream.write(`\u001b[${drawn}A\u001b[0J`);
    drawn = 0;
  };
  const draw = () => {
    const width = Math.max(20, (stream.columns || 100) - 1);
    const keyWidth = Math.max(...[...rows.keys()].map((k) => k.length));
    for (const [key, step] of rows) stream.write(`${dim('›')} ${redact(`${key.padEnd(keyWidth)}  ${step}`).slice(0, width - 2)}\n`);
    drawn = rows.size;
  };
  const above = (write: (m: string) => void) => (message: string) => {
    clear();
    write(message);
    draw();
  };
  return {
    debug: above(base.debug),
    info: above(base.info),
    warn: above(base.warn),
    error: above(base.error),
    step(message: string) {
      const match = /^([a-z0-9][a-z0-9.-]*): (.+)$/.exec(message);
      if (!match) return above(base.step)(message);
      clear();
      rows.set(match[1]!, visible(match[2]!)); // one row each: a line break in a step would misplace the redraw
      draw();
    },
    done() {
      drawn = 0;
    },
  };
}
