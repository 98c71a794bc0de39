import type { CharSet, PatternNode } from './linear-match.js';

/**
 * The part of JavaScript's regular expressions a linear-time matcher can honour: literals and escapes,
 * classes, `.`, `\d \w \s` and their negations, `* + ? {n,m}` (lazy or greedy: the same for a yes/no answer),
 * `|`, groups (capturing, named, `(?:`), `^ $ \b \B`, flags i m s u. Refused, with the reason: backreferences
 * and lookaround (no linear-time algorithm exists for them), octal escapes, Unicode property escapes.
 *
 * The source has already been accepted by `new RegExp(source, flags)`, so only the constructs that are valid
 * JavaScript need reading here, with Annex B's lenient forms (`]` and a `{` that starts no quantifier are
 * literals without the u flag). Case-insensitivity folds ASCII letters: the text matched is a canonical URL,
 * which is ASCII (percent-encoded, punycode host).
 */
export type RegexParse = { ok: true; node: PatternNode } | { ok: false; reason: string };

const MAX_UNIT = 0xffff;
const DIGITS: Array<[number, number]> = [[48, 57]];
const WORD: Array<[number, number]> = [[48, 57], [65, 90], [95, 95], [97, 122]];
const SPACE: Array<[number, number]> = [[9, 13], [32, 32], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff]];
const LINE_TERMINATORS: Array<[number, number]> = [[10, 10], [13, 13], [0x2028, 0x2029]];

class Refusal extends Error {}

export function parseRegexSubset(source: string, flags: string): RegexParse {
  try {
    return { ok: true, node: new RegexReader(source, flags).read() };
  } catch (error) {
    if (error instanceof Refusal) return { ok: false, reason: error.message };
    throw error;
  }
}

class RegexReader {
  private pos = 0;
  private readonly ignoreCase: boolean;
  private readonly multiline: boolean;
  private readonly dotAll: boolean;
  private readonly unicode: boolean;

  constructor(private readonly source: string, flags: string) {
    this.ignoreCase = flags.includes('i');
    this.multiline = flags.includes('m');
    this.dotAll = flags.includes('s');
    this.unicode = flags.includes('u');
  }

  read(): PatternNode {
    const node = this.alternation();
    if (this.pos < this.source.length) throw new Refusal(`unexpected "${this.source[this.pos]}" at ${this.pos}`);
    return node;
  }

  private peek(offset = 0): string | undefined {
    return this.source[this.pos + offset];
  }

  private alternation(): PatternNode {
    const options = [this.sequence()];
    while (this.peek() === '|') {
      this.pos++;
      options.push(this.sequence());
    }
    return options.length === 1 ? options[0]! : { kind: 'alt', options };
  }

  private sequence(): PatternNode {
    const items: PatternNode[] = [];
    while (this.pos < this.source.length && this.peek() !== '|' && this.peek() !== ')') {
      items.push(this.quantified(this.atom()));
    }
    return items.length === 1 ? items[0]! : { kind: 'seq', items };
  }

  private quantified(atom: PatternNode): PatternNode {
    let min: number;
    let max: number;
    const c = this.peek();
    if (c === '*') [min, max] = [0, Infinity];
    else if (c === '+') [min, max] = [1, Infinity];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') {
      const braces = /^\{(\d+)(,(\d*))?\}/.exec(this.source.slice(this.pos));
      if (braces === null) return atom;
      min = Number(braces[1]);
      max = braces[2] === undefined ? min : braces[3] === '' ? Infinity : Number(braces[3]);
      this.pos += braces[0].length - 1;
    } else return atom;
    this.pos++;
    if (this.peek() === '?') this.pos++;
    return { kind: 'repeat', node: atom, min, max };
  }

  private atom(): PatternNode {
    const c = this.source[this.pos++]!;
    switch (c) {
      case '^': return { kind: 'assert', what: this.multiline ? 'line-start' : 'start' };
      case '$': return { kind: 'assert', what: this.multiline ? 'line-end' : 'end' };
      case '.': return this.char(this.dotAll ? [[0, MAX_UNIT]] : complement(LINE_TERMINATORS));
      case '(': return this.group();
      case '[': return this.charClass();
      case '\\': return this.atomEscape();
      default: return this.literal(c.charCodeAt(0));
    }
  }

  private group(): PatternNode {
    if (this.peek() === '?') {
      const head = this.source.slice(this.pos, this.pos + 3);
      if (head.startsWith('?:')) this.pos += 2;
      else if (head.startsWith('?=') || head.startsWith('?!')) throw new Refusal(`lookahead "(${head.slice(0, 2)}" is not supported (no linear-time match exists for it)`);
      else if (head === '?<=' || head === '?<!') throw new Refusal(`lookbehind "(${head}" is not supported (no linear-time match exists for it)`);
      else if (head.startsWith('?<')) this.pos = this.source.indexOf('>', this.pos) + 1;
      else throw new Refusal(`the group "(${head}" is not supported`);
    }
    const inner = this.alternation();
    if (this.peek() !== ')') throw new Refusal(`unclosed group at ${this.pos}`);
    this.pos++;
    return inner;
  }

  private atomEscape(): PatternNode {
    const c = this.source[this.pos]!;
    if (c === 'b' || c === 'B') {
      this.pos++;
      return { kind: 'assert', what: c === 'b' ? 'word-boundary' : 'not-word-boundary' };
    }
    if (c === 'k' && this.peek(1) === '<') throw new Refusal('backreferences ("\\k<name>") are not supported (no linear-time match exists for them)');
    const escaped = this.escape(false);
    if (Array.isArray(escaped)) return this.char(escaped);
    if (escaped > MAX_UNIT) {
      // a code point beyond the BMP (\u{…} with the u flag): its two UTF-16 units in a row
      const pair = String.fromCodePoint(escaped);
      return { kind: 'seq', items: [this.literal(pair.charCodeAt(0)), this.literal(pair.charCodeAt(1))] };
    }
    return this.literal(escaped);
  }

  /**
   * After a backslash: a code unit (or a code point with \u{…}), or the ranges of a class escape. A backslash
   * that stands for itself (Annex B's `\c` without a control letter) is returned without consuming the next unit.
   */
  private escape(inClass: boolean): number | Array<[number, number]> {
    const c = this.source[this.pos++]!;
    switch (c) {
      case 'd': return DIGITS;
      case 'D': return complement(DIGITS);
      case 'w': return WORD;
      case 'W': return complement(WORD);
      case 's': return SPACE;
      case 'S': return complement(SPACE);
      case 'n': return 10;
      case 'r': return 13;
      case 't': return 9;
      case 'v': return 11;
      case 'f': return 12;
      case 'b': return 8; // inside a class; \b outside one is read by atomEscape
      case '0':
        if (/[0-9]/.test(this.peek() ?? '')) throw new Refusal(`the octal escape "\\0${this.peek()}" is not supported; write \\x.. instead`);
        return 0;
      case 'x': {
        const hex = /^[0-9a-fA-F]{2}/.exec(this.source.slice(this.pos));
        if (hex === null) return c.charCodeAt(0);
        this.pos += 2;
        return parseInt(hex[0], 16);
      }
      case 'u': {
        const braced = this.unicode ? /^\{([0-9a-fA-F]+)\}/.exec(this.source.slice(this.pos)) : null;
        if (braced !== null) {
          this.pos += braced[0].length;
          return parseInt(braced[1]!, 16);
        }
        const hex = /^[0-9a-fA-F]{4}/.exec(this.source.slice(this.pos));
        if (hex === null) return c.charCodeAt(0);
        this.pos += 4;
        return parseInt(hex[0], 16);
      }
      case 'c': {
        const control = this.peek() ?? '';
        if (/[a-zA-Z]/.test(control) || (inClass && /[0-9_]/.test(control))) {
          this.pos++;
          return control.charCodeAt(0) % 32;
        }
        this.pos--;
        return '\\'.charCodeAt(0);
      }
      case 'p':
      case 'P':
        if (this.unicode) throw new Refusal(`Unicode property escapes ("\\${c}{…}") are not supported`);
        return c.charCodeAt(0);
      default:
        if (/[1-9]/.test(c)) {
          throw new Refusal(inClass || !this.unicode
            ? `"\\${c}" (a backreference, or an octal escape) is not supported; write \\x.. for a character`
            : `backreferences ("\\${c}") are not supported (no linear-time match exists for them)`);
        }
        return c.charCodeAt(0);
    }
  }

  private charClass(): PatternNode {
    const negated = this.peek() === '^';
    if (negated) this.pos++;
    const ranges: Array<[number, number]> = [];
    while (this.peek() !== ']') {
      if (this.pos >= this.source.length) throw new Refusal('unclosed character class');
      const from = this.classAtom();
      if (this.peek() === '-' && this.peek(1) !== ']' && this.peek(1) !== undefined && !Array.isArray(from)) {
        const save = this.pos;
        this.pos++;
        const to = this.classAtom();
        if (!Array.isArray(to)) {
          ranges.push([from, to]);
          continue;
        }
        // Annex B: a class escape at either end makes "-" a literal
        this.pos = save;
      }
      if (Array.isArray(from)) ranges.push(...from);
      else ranges.push([from, from]);
    }
    this.pos++;
    if (ranges.some(([, to]) => to > MAX_UNIT)) throw new Refusal('characters beyond U+FFFF in a class are not supported');
    return { kind: 'char', set: this.folded({ ranges: normalise(ranges), negated }) };
  }

  private classAtom(): number | Array<[number, number]> {
    const c = this.source[this.pos++]!;
    if (c !== '\\') return c.charCodeAt(0);
    if (this.peek() === '-') {
      this.pos++;
      return 45;
    }
    return this.escape(true);
  }

  private literal(unit: number): PatternNode {
    return this.char([[unit, unit]]);
  }

  private char(ranges: Array<[number, number]>): PatternNode {
    return { kind: 'char', set: this.folded({ ranges: normalise(ranges), negated: false }) };
  }

  /** With the i flag a set also holds the other case of each ASCII letter in it. */
  private folded(set: CharSet): CharSet {
    if (!this.ignoreCase) return set;
    const extra: Array<[number, number]> = [];
    for (const [from, to] of set.ranges) {
      for (const [lo, hi, shift] of [[65, 90, 32], [97, 122, -32]] as const) {
        const a = Math.max(from, lo);
        const b = Math.min(to, hi);
        if (a <= b) extra.push([a + shift, b + shift]);
      }
    }
    return { ranges: normalise([...set.ranges, ...extra]), negated: set.negated };
  }
}

function normalise(ranges: Array<[number, number]>): Array<[number, number]> {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [from, to] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && from <= last[1] + 1) last[1] = Math.max(last[1], to);
    else out.push([from, to]);
  }
  return out;
}

function complement(ranges: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let next = 0;
  for (const [from, to] of normalise(ranges)) {
    if (from > next) out.push([next, from - 1]);
    next = to + 1;
  }
  if (next <= MAX_UNIT) out.push([next, MAX_UNIT]);
  return out;
}
