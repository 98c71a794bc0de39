import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/error-codes.js';

// The type system already refuses a code outside ERROR_CODES where an error is made; what it cannot see is a
// code listed but thrown nowhere (a stale entry a script might wait for in vain), or one let in by a cast.
// These checks read depl's sources as syntax (no type-checking: a few hundred ms).

const repo = fileURLToPath(new URL('../..', import.meta.url));
const listFile = join(repo, 'src', 'error-codes.ts');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

interface Source {
  file: string;
  tree: ts.SourceFile;
}

const sources: Source[] = sourceFiles(join(repo, 'src')).filter((file) => file !== listFile).map((file) => ({
  file: relative(repo, file),
  tree: ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true),
}));

function walk(node: ts.Node, visit: (node: ts.Node) => void): void {
  visit(node);
  node.forEachChild((child) => walk(child, visit));
}

/** UserError, OperationError and the classes that extend them, by name (depl's class names are unique). */
function deplErrorClasses(): Set<string> {
  const names = new Set(['UserError', 'OperationError']);
  const declared: Array<{ name: string; base: string }> = [];
  for (const { tree } of sources) {
    walk(tree, (node) => {
      if (!ts.isClassDeclaration(node) || node.name === undefined) return;
      const base = node.heritageClauses?.find((clause) => clause.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression.getText(tree);
      if (base !== undefined) declared.push({ name: node.name.text, base });
    });
  }
  for (let grew = true; grew; ) {
    grew = false;
    for (const { name, base } of declared) if (names.has(base) && !names.has(name)) grew = Boolean(names.add(name));
  }
  return names;
}

/** Every string literal of the sources (not comments, not the list itself), with where it is. */
function stringLiterals(): Array<{ text: string; at: string }> {
  const found: Array<{ text: string; at: string }> = [];
  for (const { file, tree } of sources) {
    walk(tree, (node) => {
      if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
        found.push({ text: node.text, at: `${file}:${tree.getLineAndCharacterOfPosition(node.getStart()).line + 1}` });
      }
    });
  }
  return found;
}

describe('error codes (src/error-codes.ts)', () => {
  it('are UPPER_SNAKE, listed once each, in order', () => {
    for (const code of ERROR_CODES) expect(code).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
    expect([...ERROR_CODES]).toEqual([...new Set(ERROR_CODES)].sort());
  });

  it('are each used by the code, so none is listed that depl never reports', () => {
    const used = new Set(stringLiterals().map((literal) => literal.text));
    const unused = ERROR_CODES.filter((code) => !used.has(code));
    expect(unused).toEqual([]);
  });

  it('reach an error only as checked values: no cast to ErrorCode, no code built from text', () => {
    const listed = new Set<string>(ERROR_CODES);
    const classes = deplErrorClasses();
    expect([...classes]).toEqual(expect.arrayContaining(['UserError', 'OperationError', 'EdgeApplyError']));
    const problems: string[] = [];
    for (const { file, tree } of sources) {
      walk(tree, (node) => {
        const at = `${file}:${tree.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
        if ((ts.isAsExpression(node) || ts.isTypeAssertionExpression(node)) && node.type.getText(tree) === 'ErrorCode') problems.push(`${at}: cast to ErrorCode`);
        // a literal given as an error's code must be listed (the types say so too, unless a subclass
        // declared a looser parameter), and one put together from text is not a code the list can hold
        if (ts.isNewExpression(node) && classes.has(node.expression.getText(tree))) {
          const code = node.arguments?.[2];
          if (code !== undefined && ts.isStringLiteral(code) && !listed.has(code.text)) problems.push(`${at}: '${code.text}' is not in ERROR_CODES`);
          if (code !== undefined && ts.isTemplateExpression(code)) problems.push(`${at}: a code built from text`);
        }
      });
    }
    expect(problems).toEqual([]);
  });
});
