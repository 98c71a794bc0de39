/** Plain-text tables for the terminal: every column as wide as its widest cell, two spaces between columns. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((row) => width(row[i] ?? ''))));
  return [header, ...rows]
    .map((row) => header.map((_, i) => pad(row[i] ?? '', widths[i]!)).join('  ').trimEnd())
    .join('\n');
}

/** Characters as the terminal shows them: a code point is one column (the tables hold names, dates, URLs). */
function width(text: string): number {
  return [...text].length;
}

function pad(text: string, to: number): string {
  return text + ' '.repeat(to - width(text));
}
