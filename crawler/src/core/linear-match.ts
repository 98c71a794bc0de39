/**
 * A matcher whose time is linear in the length of the text: the pattern is compiled to a Thompson NFA whose
 * states are followed as a set, one set per position, never one path at a time, so no input can make it
 * backtrack. The sets are cached as the states of a DFA built while matching (runProgram). Each text position
 * costs at most one step per program instruction. Globs and the regex subset (url-patterns.ts) both compile
 * to the tree below.
 */

/** Code-unit ranges [from, to] (inclusive), sorted and merged; `negated` matches every unit outside them. */
export interface CharSet {
  ranges: Array<[number, number]>;
  negated: boolean;
}

export type Assertion = 'start' | 'end' | 'line-start' | 'line-end' | 'word-boundary' | 'not-word-boundary';

export type PatternNode =
  | { kind: 'char'; set: CharSet }
  | { kind: 'seq'; items: PatternNode[] }
  | { kind: 'alt'; options: PatternNode[] }
  | { kind: 'repeat'; node: PatternNode; min: number; max: number }
  | { kind: 'assert'; what: Assertion };

const CHAR = 0;
const SPLIT = 1;
const JUMP = 2;
const ASSERT = 3;
const MATCH = 4;

const ASSERTIONS: Assertion[] = ['start', 'end', 'line-start', 'line-end', 'word-boundary', 'not-word-boundary'];

/** The compiled program: parallel arrays indexed by instruction. */
export interface Program {
  op: Uint8Array;
  /** CHAR: index into sets; SPLIT and JUMP: first target; ASSERT: index into ASSERTIONS. */
  arg: Int32Array;
  /** SPLIT: second target. */
  alt: Int32Array;
  sets: CompiledSet[];
  /** Only tried from position 0 (a glob); otherwise a match may start anywhere (a regex search). */
  anchored: boolean;
  /** Built on first use. */
  dfa?: LazyDfa;
}

interface CompiledSet {
  ascii: Uint8Array;
  ranges: Array<[number, number]>;
  negated: boolean;
}

/** The instructions a tree compiles to; saturates instead of overflowing on huge repetition counts. */
export function programSize(node: PatternNode): number {
  switch (node.kind) {
    case 'char':
    case 'assert':
      return 1;
    case 'seq':
      return node.items.reduce((sum, item) => sum + programSize(item), 0);
    case 'alt':
      return node.options.reduce((sum, option) => sum + programSize(option), 0) + 2 * (node.options.length - 1);
    case 'repeat': {
      const inner = programSize(node.node);
      const size = node.min * inner + (node.max === Infinity ? inner + 2 : (node.max - node.min) * (inner + 1));
      return Math.min(size, Number.MAX_SAFE_INTEGER);
    }
  }
}

/** Compiles a tree; the caller has checked programSize() against its limit (every instruction is allocated). */
export function compileProgram(root: PatternNode, anchored: boolean): Program {
  const op: number[] = [];
  const arg: number[] = [];
  const alt: number[] = [];
  const sets: CompiledSet[] = [];
  const emit = (code: number, a = 0, b = 0) => {
    op.push(code);
    arg.push(a);
    alt.push(b);
    return op.length - 1;
  };
  const emitNode = (node: PatternNode): void => {
    switch (node.kind) {
      case 'char':
        sets.push(compileSet(node.set));
        emit(CHAR, sets.length - 1);
        return;
      case 'assert':
        emit(ASSERT, ASSERTIONS.indexOf(node.what));
        return;
      case 'seq':
        for (const item of node.items) emitNode(item);
        return;
      case 'alt': {
        const jumps: number[] = [];
        node.options.forEach((option, i) => {
          if (i === node.options.length - 1) {
            emitNode(option);
            return;
          }
          const split = emit(SPLIT);
          arg[split] = split + 1;
          emitNode(option);
          jumps.push(emit(JUMP));
          alt[split] = op.length;
        });
        for (const jump of jumps) arg[jump] = op.length;
        return;
      }
      case 'repeat': {
        for (let i = 0; i < node.min; i++) emitNode(node.node);
        if (node.max === Infinity) {
          // min copies, then a loop: split(body, out); body; jump back
          const split = emit(SPLIT);
          arg[split] = split + 1;
          emitNode(node.node);
          emit(JUMP, split);
          alt[split] = op.length;
          return;
        }
        // optional copies nest: (x(x(x)?)?)? — each split may skip to the end
        const splits: number[] = [];
        for (let i = node.min; i < node.max; i++) {
          const split = emit(SPLIT);
          arg[split] = split + 1;
          splits.push(split);
          emitNode(node.node);
        }
        for (const split of splits) alt[split] = op.length;
        return;
      }
    }
  };
  emitNode(root);
  emit(MATCH);
  return { op: Uint8Array.from(op), arg: Int32Array.from(arg), alt: Int32Array.from(alt), sets, anchored };
}

function compileSet(set: CharSet): CompiledSet {
  const ascii = new Uint8Array(128);
  for (let c = 0; c < 128; c++) ascii[c] = inRanges(set.ranges, c) !== set.negated ? 1 : 0;
  return { ascii, ranges: set.ranges, negated: set.negated };
}

function inRanges(ranges: Array<[number, number]>, c: number): boolean {
  for (const [from, to] of ranges) if (c >= from && c <= to) return true;
  return false;
}

function setHas(set: CompiledSet, c: number): boolean {
  return c < 128 ? set.ascii[c] === 1 : inRanges(set.ranges, c) !== set.negated;
}

const isLineTerminator = (c: number) => c === 10 || c === 13 || c === 0x2028 || c === 0x2029;
const isWordUnit = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;

/** What an assertion needs to know about the unit after a position. */
const OTHER = 0;
const WORD = 1;
const LINE_END = 2;
const TEXT_END = 3;
const CATEGORIES = 4;
const ASCII_CATEGORY = Uint8Array.from({ length: 128 }, (_, unit) => (isWordUnit(unit) ? WORD : isLineTerminator(unit) ? LINE_END : OTHER));
const categoryOf = (unit: number) => (unit < 128 ? ASCII_CATEGORY[unit]! : isLineTerminator(unit) ? LINE_END : OTHER);

/**
 * Working out a transition (closure, interning the new set) costs about five cached steps per NFA state
 * (measured), so it is charged that way: a budget then bounds time whether the cache hits or thrashes.
 */
const MISS_WEIGHT = 5;

/** Steps left for one page's links; a match that would need more gives up (see url-patterns.ts). */
export interface MatchBudget {
  steps: number;
}

/**
 * Whether the program matches `text` (anywhere, unless anchored): true, false, or null when the budget ran out.
 * Each position costs one step when its transition is cached, or MISS_WEIGHT per NFA state it leaves when the
 * transition has to be worked out (at most the program's size): linear in the text's length either way.
 */
export function runProgram(program: Program, text: string, budget: MatchBudget): boolean | null {
  const dfa = program.dfa ?? (program.dfa = new LazyDfa(program));
  const { unitClass, categorySlot, width } = dfa;
  const length = text.length;
  let state = dfa.start(length > 0 ? categoryOf(text.charCodeAt(0)) : TEXT_END);
  let table = dfa.table;
  // counted locally and settled on return: this loop is the hot path of every link on every page
  let steps = dfa.size(state);
  const limit = budget.steps;
  let result: boolean | null = false;
  for (let pos = 0; ; pos++) {
    if (dfa.matches[state] === 1) {
      result = true;
      break;
    }
    // an unanchored search may still start later; an anchored one with no state left is over
    if (pos === length || (program.anchored && dfa.size(state) === 0)) break;
    const unit = text.charCodeAt(pos);
    const category = pos + 1 < length ? categoryOf(text.charCodeAt(pos + 1)) : TEXT_END;
    const slot = unit < 128 ? state * width + unitClass[unit]! * CATEGORIES + categorySlot[category]! : -1;
    const cached = slot >= 0 ? table[slot]! : -1;
    if (cached >= 0) {
      steps++;
      state = cached;
    } else {
      steps += MISS_WEIGHT * (dfa.size(state) + 1);
      const generation = dfa.generation;
      const target = dfa.step(state, unit, category);
      table = dfa.table;
      if (slot >= 0 && generation === dfa.generation) table[slot] = target;
      state = target;
    }
    if (steps > limit) {
      result = null;
      break;
    }
  }
  budget.steps -= steps;
  return result;
}

/**
 * A DFA built while matching, one state per distinct set of NFA states (RE2's approach): a transition is worked
 * out once by simulating the NFA, then is a table lookup. Assertions are decided by the unit read (before the
 * position) and the category of the next one, so transitions are keyed by both. ASCII units that every set of
 * the program treats alike share a column, so a state's row is small. When the cache holds too many states it
 * starts over, so a pattern whose DFA would be exponential costs the NFA simulation's time, not memory.
 */
class LazyDfa {
  static readonly MAX_STATES = 256;
  /** Column of an ASCII unit: units no set tells apart share one. */
  readonly unitClass = new Uint8Array(128);
  /** Which categories the program's assertions tell apart (all the same when it has none). */
  readonly categorySlot: Uint8Array;
  readonly width: number;
  /** Next state by state x column; -1: not worked out yet. */
  table: Int32Array;
  matches: Uint8Array;
  generation = 0;
  private pcs: Int32Array[] = [];
  private byKey = new Map<string, number>();
  private starts: number[] = [];
  private startsGeneration = -1;
  private readonly scratch: StateSet;
  private readonly stack: Int32Array;

  constructor(private readonly program: Program) {
    this.scratch = new StateSet(program.op.length);
    this.stack = new Int32Array(program.op.length);
    const asserts = [...program.op].flatMap((code, pc) => (code === ASSERT ? [ASSERTIONS[program.arg[pc]!]!] : []));
    const contextual = asserts.some((what) => what !== 'start' && what !== 'end');
    // a unit read also decides the assertions after it (a line start, a word boundary), so those tell units apart too
    const signatures = new Map<string, number>();
    for (let unit = 0; unit < 128; unit++) {
      const signature = `${contextual ? ASCII_CATEGORY[unit] : ''}:${program.sets.map((set) => set.ascii[unit]).join('')}`;
      if (!signatures.has(signature)) signatures.set(signature, signatures.size);
      this.unitClass[unit] = signatures.get(signature)!;
    }
    this.categorySlot = contextual ? Uint8Array.from([0, 1, 2, 3]) : Uint8Array.from([0, 0, 0, asserts.includes('end') ? 1 : 0]);
    this.width = signatures.size * CATEGORIES;
    this.table = new Int32Array(8 * this.width).fill(-1);
    this.matches = new Uint8Array(8);
  }

  size(state: number): number {
    return this.pcs[state]!.length;
  }

  start(category: number): number {
    if (this.startsGeneration !== this.generation) {
      this.starts = [];
      this.startsGeneration = this.generation;
    }
    const cached = this.starts[category];
    if (cached !== undefined) return cached;
    this.scratch.clear();
    this.close(0, -1, category);
    const state = this.intern();
    if (this.startsGeneration === this.generation) this.starts[category] = state;
    return state;
  }

  step(from: number, unit: number, category: number): number {
    const { op, arg, sets, anchored } = this.program;
    this.scratch.clear();
    for (const pc of this.pcs[from]!) if (op[pc] === CHAR && setHas(sets[arg[pc]!]!, unit)) this.close(pc + 1, unit, category);
    if (!anchored) this.close(0, unit, category);
    return this.intern();
  }

  /** Adds pc and what it reaches without reading a unit, `previous` being the unit before the position (-1: none). */
  private close(start: number, previous: number, category: number): void {
    const { op, arg, alt } = this.program;
    const stack = this.stack;
    let top = 0;
    stack[top++] = start;
    while (top > 0) {
      const pc = stack[--top]!;
      if (!this.scratch.add(pc)) continue;
      if (op[pc] === JUMP) stack[top++] = arg[pc]!;
      else if (op[pc] === SPLIT) {
        stack[top++] = alt[pc]!;
        stack[top++] = arg[pc]!;
      } else if (op[pc] === ASSERT && holds(ASSERTIONS[arg[pc]!]!, previous, category)) stack[top++] = pc + 1;
    }
  }

  /** The state for the scratch set: found, or added (after starting over when the cache is full). */
  private intern(): number {
    const { op } = this.program;
    const kept: number[] = [];
    let matches = false;
    for (let i = 0; i < this.scratch.count; i++) {
      const pc = this.scratch.dense[i]!;
      if (op[pc] === CHAR) kept.push(pc);
      else if (op[pc] === MATCH) matches = true;
    }
    kept.sort((a, b) => a - b);
    const key = `${matches ? 'm' : ''}${kept.join(',')}`;
    const found = this.byKey.get(key);
    if (found !== undefined) return found;
    if (this.pcs.length >= LazyDfa.MAX_STATES) {
      this.pcs = [];
      this.byKey = new Map();
      this.table.fill(-1);
      this.generation++;
    }
    const id = this.pcs.length;
    if ((id + 1) * this.width > this.table.length) {
      const grown = new Int32Array(this.table.length * 2).fill(-1);
      grown.set(this.table);
      this.table = grown;
      const matched = new Uint8Array(this.matches.length * 2);
      matched.set(this.matches);
      this.matches = matched;
    }
    this.pcs.push(Int32Array.from(kept));
    this.matches[id] = matches ? 1 : 0;
    this.byKey.set(key, id);
    return id;
  }
}

function holds(what: Assertion, previous: number, category: number): boolean {
  const wordBefore = previous >= 0 && isWordUnit(previous);
  switch (what) {
    case 'start': return previous === -1;
    case 'end': return category === TEXT_END;
    case 'line-start': return previous === -1 || isLineTerminator(previous);
    case 'line-end': return category === TEXT_END || category === LINE_END;
    case 'word-boundary': return wordBefore !== (category === WORD);
    case 'not-word-boundary': return wordBefore === (category === WORD);
  }
}

/** A set of instruction indexes with O(1) add, membership and clear (Briggs and Torczon's sparse set). */
class StateSet {
  readonly dense: Int32Array;
  private readonly sparse: Int32Array;
  count = 0;

  constructor(size: number) {
    this.dense = new Int32Array(size);
    this.sparse = new Int32Array(size);
  }

  /** False when already present. */
  add(pc: number): boolean {
    const at = this.sparse[pc]!;
    if (at < this.count && this.dense[at] === pc) return false;
    this.sparse[pc] = this.count;
    this.dense[this.count++] = pc;
    return true;
  }

  clear(): void {
    this.count = 0;
  }
}
