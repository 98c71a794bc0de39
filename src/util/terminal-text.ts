/**
 * Text from outside depl (Compose files, the cluster, the tasks' output, echoed input) reaches the operator's
 * terminal only through here. A terminal obeys control characters: ESC starts sequences that recolour, move
 * the cursor, retitle the window or rewrite the screen, and CR, line breaks and bidi overrides make one value
 * pass for other lines or other text. So such characters are shown as their escapes (`\u001b`, `\n`), which
 * reads as what it is and does nothing. Backslashes are left alone: this is for eyes, not for parsing.
 */

// C0 controls, DEL, C1 controls (U+0085 NEL, U+009B CSI, ...), the Unicode line and paragraph separators, and
// the bidi embeddings, overrides and isolates that reorder what follows them.
// eslint-disable-next-line no-control-regex -- control characters are what this matches
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex -- control characters are what this matches
const CONTROL_BUT_LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// what JSON.stringify leaves raw in strings (it escapes C0 itself; outside strings it writes only ASCII)
const RAW_IN_JSON = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `\n`, `\r`, `\t`, else `\u001b`. */
export function escapeOf(char: string): string {
  return NAMED[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** One value on one line: every control character, line break and separator shown as its escape. */
export function visible(value: string): string {
  return value.replace(CONTROL, escapeOf);
}

/**
 * Text depl laid out itself (several lines, aligned with tabs) with outside values in it: keeps line feeds
 * and tabs, shows every other control character as visible() does. Where a value is known to be one value,
 * pass it through visible() as well, so a line break in it cannot pass for a line of depl's.
 */
export function visibleLines(text: string): string {
  return text.replace(CONTROL_BUT_LAYOUT, escapeOf);
}

// ECMA-48: control strings (OSC, DCS, SOS, PM, APC) up to their terminator (ST, or BEL after OSC), control
// sequences (CSI parameters intermediates final), and the other escape sequences (ESC intermediates final).
// Each class excludes what ends it, so matching is linear in the line's length.
const ESCAPE_SEQUENCE = new RegExp([
  '(?:\\u001b[\\]PX^_]|[\\u0090\\u0098\\u009d\\u009e\\u009f])[^\\u0007\\u001b\\u009c]*(?:\\u0007|\\u001b\\\\|\\u009c)',
  '(?:\\u001b\\[|\\u009b)[\\u0030-\\u003f]*[\\u0020-\\u002f]*[\\u0040-\\u007e]',
  '\\u001b[\\u0020-\\u002f]*[\\u0030-\\u007e]',
].join('|'), 'g');

/**
 * A line a program wrote for a terminal (a task's log line): its colour, cursor and title sequences removed,
 * then any control character left (an unterminated sequence, a CR, a bell) shown as visible() does.
 */
export function withoutEscapes(line: string): string {
  return visible(line.replace(ESCAPE_SEQUENCE, ''));
}

/**
 * JSON for a terminal: the same document, with the characters JSON.stringify leaves raw but a terminal acts on
 * (C1 controls, line and paragraph separators, bidi controls) written as \u escapes. Those characters can only
 * stand inside JSON strings, where the escape means the same character, so a parser reads the very same values.
 */
export function terminalJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(RAW_IN_JSON, escapeOf);
}
