import { describe, expect, it } from 'vitest';
import { terminalJson, visible, visibleLines, withoutEscapes } from '../../src/util/terminal-text.js';

describe('text from outside, shown on the operator\'s terminal', () => {
  it('shows one value on one line: control characters, line breaks and bidi controls as escapes', () => {
    expect(visible('\u001b[31mred\u001b[0m')).toBe('\\u001b[31mred\\u001b[0m');
    expect(visible('a\nb\r\nc\td')).toBe('a\\nb\\r\\nc\\td');
    expect(visible('nel\u0085 csi\u009b2J ls\u2028 ps\u2029 rlo\u202e del\u007f bell\u0007 nul\u0000')).toBe(
      'nel\\u0085 csi\\u009b2J ls\\u2028 ps\\u2029 rlo\\u202e del\\u007f bell\\u0007 nul\\u0000');
  });

  it('leaves ordinary text alone, backslashes and other scripts included', () => {
    const ordinary = 'C:\\temp\\n is a path; café 日本語 🙂 ‎x';
    expect(visible(ordinary)).toBe(ordinary);
    expect(visibleLines(ordinary)).toBe(ordinary);
  });

  it('keeps the lines and tabs depl laid out, and escapes the rest', () => {
    expect(visibleLines('NAME\tSTATE\nweb\u001b[2J\tup\rfake\n')).toBe('NAME\tSTATE\nweb\\u001b[2J\tup\\rfake\n');
  });

  it('removes a program\'s escape sequences from its line, and shows what is left of them', () => {
    expect(withoutEscapes('\u001b[1;31mERROR\u001b[0m disk full')).toBe('ERROR disk full');
    expect(withoutEscapes('\u001b]0;window title\u0007a\u001b]8;;http://evil.example\u001b\\link\u001b]8;;\u001b\\')).toBe('alink');
    expect(withoutEscapes('\u009b2Jcleared \u001bc reset \u001b(B charset \u001b7saved\u001b8')).toBe('cleared  reset  charset saved');
    expect(withoutEscapes('\u001bP+q\u001b\\dcs \u001b[?1049h\u001b[Halt screen')).toBe('dcs alt screen');
    // an unterminated sequence loses its ESC and introducer, a lone CR or ESC is shown: text a terminal does not act on
    expect(withoutEscapes('\u001b]0;no end\rover\u001b')).toBe('0;no end\\rover\\u001b');
  });

  it('removes escape sequences in time linear in the line\'s length', () => {
    const long = `\u001b]${'a'.repeat(200_000)}\u001b[${'1;'.repeat(100_000)}`;
    const started = performance.now();
    withoutEscapes(long);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('writes JSON that reads back the same, with no character left raw that a terminal acts on', () => {
    const value = { message: '\u001b[2J\u009b2J\u0085\u2028\u202e\n', list: ['a'] };
    const json = terminalJson(value, 2);
    expect(JSON.parse(json)).toEqual(value);
    expect(json).toBe('{\n  "message": "\\u001b[2J\\u009b2J\\u0085\\u2028\\u202e\\n",\n  "list": [\n    "a"\n  ]\n}');
  });
});
