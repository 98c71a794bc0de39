import { Document, parseAllDocuments, visit } from 'yaml';
import { visible } from '../util/terminal-text.js';

/**
 * YAML text made from input depl does not control (a Compose file's keys and values, a path) that must say
 * exactly what depl meant: values are rendered by the YAML library, comments are one line each whatever they
 * quote, and renderedDifferences() reads the text back to prove it before anything is written.
 */

// Characters the YAML library writes raw, even inside quotes, that YAML 1.1 readers and editors take for line
// breaks (NEL, LS, PS) or that hide or reorder text (C1, NBSP, bidi controls, BOM). A string holding one is
// double-quoted and the character written as its escape; C0 controls the library escapes itself.
// eslint-disable-next-line no-control-regex -- control characters are what this matches
const NEEDS_QUOTES = /[\u0000-\u001f\u007f-\u00a0\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/;
const RAW_IN_QUOTES = /[\u007f-\u00a0\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;
const unicodeEscape = (char: string) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** `value` as YAML text (sequences in flow style, `[a, b]`), no line longer for any string in it. */
export function yamlText(value: unknown): string {
  const doc = new Document(value);
  visit(doc, {
    Seq: (_key, node) => { node.flow = true; },
    Scalar: (_key, node) => {
      if (typeof node.value === 'string' && NEEDS_QUOTES.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  // every string holding such a character is double-quoted now, so each one left raw stands inside quotes,
  // where its \u escape means the same character
  return doc.toString({ lineWidth: 0 }).trimEnd().replace(RAW_IN_QUOTES, unicodeEscape);
}

/** One comment line, whatever `text` holds: its line breaks and control characters are shown as escapes. */
export function yamlComment(text: string): string {
  return `# ${visible(text)}`;
}

/**
 * Where `text` reads back as something other than `intended`: the paths of keys added, missing or changed
 * (`registry`, `services.web.env.A`), or why it does not read as one document at all. Empty when the text says
 * exactly what was meant. Keys whose intended value is undefined are absent from the text by design.
 */
export function renderedDifferences(text: string, intended: unknown): string[] {
  const documents = parseAllDocuments(text, { uniqueKeys: true });
  if (!Array.isArray(documents) || documents.length !== 1) return [`the text holds ${Array.isArray(documents) ? documents.length : 0} YAML documents, not one`];
  const [document] = documents;
  const problems = [...document!.errors, ...document!.warnings];
  if (problems.length > 0) return [`the text is not clean YAML: ${problems[0]!.message.split('\n')[0]}`];
  const differences: string[] = [];
  compare(document!.toJS(), intended, [], differences);
  return differences;
}

function compare(actual: unknown, intended: unknown, at: string[], out: string[]): void {
  const where = at.length === 0 ? '(the document)' : at.join('.');
  if (isMapping(intended)) {
    if (!isMapping(actual)) {
      out.push(where);
      return;
    }
    for (const key of new Set([...Object.keys(actual), ...Object.keys(intended)])) {
      if (!Object.hasOwn(intended, key) || intended[key] === undefined) {
        if (Object.hasOwn(actual, key)) out.push([...at, key].join('.'));
      } else if (!Object.hasOwn(actual, key)) {
        out.push([...at, key].join('.'));
      } else {
        compare(actual[key], intended[key], [...at, key], out);
      }
    }
    return;
  }
  if (Array.isArray(intended)) {
    if (!Array.isArray(actual) || actual.length !== intended.length) {
      out.push(where);
      return;
    }
    intended.forEach((item, i) => compare(actual[i], item, [...at, String(i)], out));
    return;
  }
  if (!Object.is(actual, intended)) out.push(where);
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
