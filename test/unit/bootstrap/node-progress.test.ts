import { describe, expect, it } from 'vitest';
import { nodeProgressLogger } from '../../../src/cli/node-progress.js';
import { createLogger } from '../../../src/util/log.js';

function fakeTty() {
  const chunks: string[] = [];
  const stream = { isTTY: true, columns: 60, write: (s: string) => { chunks.push(s); return true; } };
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => chunks.join('') };
}

describe('node-up progress on a TTY', () => {
  it('keeps one line per node, rewritten in place with its latest step', () => {
    const before = process.env.NO_COLOR;
    process.env.NO_COLOR = '1';
    const tty = fakeTty();
    const log = nodeProgressLogger(createLogger({ stream: tty.stream, color: false }), tty.stream);
    log.step('node-1: ssh ready');
    log.step('node-2: ssh ready');
    log.step('node-1: docker ready');
    log.warn('something odd');
    log.done();
    const out = tty.text();
    // the second draw moves up over the two node lines and clears them before drawing again
    expect(out).toContain('\u001b[2A\u001b[0J');
    const finalBlock = out.slice(out.lastIndexOf('\u001b[0J') + 4);
    expect(finalBlock).toBe('warning: something odd\n› node-1  docker ready\n› node-2  ssh ready\n');
    if (before === undefined) delete process.env.NO_COLOR;
    else process.env.NO_COLOR = before;
  });
});
