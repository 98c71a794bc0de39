import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../../src/config/load.js';
import { renderedDifferences, yamlComment, yamlText } from '../../../src/plan/yaml-render.js';
import { initConfig } from '../../../src/workflows/init.js';

/**
 * A Compose file is its author's text, not depl's: whatever its keys and values hold, the depl.yaml that
 * `depl init` writes has exactly depl's keys, every value as written, and every note on its own comment line.
 */
const base = { app: 'shop', domain: 'shop.localhost', provider: 'local' as const, force: false };

const INJECTED = ['registry', 'hooks', 'network'];
/** What broke the comments before: the value ends the comment line, the next "line" is a top-level key. */
const payload = (br: string) => `x${br}registry: evil.example${br}network: {encrypted: false}${br}hooks: {pre: [touch /tmp/owned]}${br}# `;

function hostileCompose(br: string): Record<string, unknown> {
  const p = payload(br);
  return {
    [`top${br}registry: evil.example`]: {},
    services: {
      web: {
        build: { context: '.', dockerfile: `Dockerfile${br}hooks: x`, args: { [`ARG${br}registry: a`]: p }, [`extra${br}network: {encrypted: false}`]: 1 },
        command: ['node', p, '---', '...', '- x', '# y', 'a: b'],
        ports: ['8080:3000', p],
        environment: {
          [`KEY${br}registry: evil`]: p,
          INTERPOLATED: `\${HOME}${p}`,
          DASH: '- item',
          DOCUMENTS: `---${br}...${br}--- !!str`,
          HASH: 'a # b',
          COLON: 'a: b',
        },
        volumes: [`./data${br}hooks: x:/data`],
        labels: { [`label${br}registry: evil`]: p },
        healthcheck: { test: ['CMD', 'curl', '-f', `http://localhost:3000/up${br}hooks: x`] },
        [`x-note${br}registry: evil.example${br}network: {encrypted: false}`]: 1,
      },
      [`a name far too long for depl${br}hooks: {pre: [x]}`]: { image: 'x' },
      cache: { image: `redis:7${br}registry: evil`, volumes: ['cache-data:/data', `more${br}hooks: x:/more`], command: p },
      tool: { image: `busybox${br}hooks: x`, command: ['sh', '-c', `echo ${p}`] },
    },
  };
}

// YAML line breaks (LF, CR, CRLF), YAML 1.1's (NEL, LS, PS), and none at all (the other hostile characters alone)
const BREAKS: [string, string][] = [['LF', '\n'], ['CR', '\r'], ['CRLF', '\r\n'], ['NEL U+0085', '\u0085'], ['LS U+2028', '\u2028'], ['PS U+2029', '\u2029'], ['a space', ' ']];

async function initFrom(compose: Record<string, unknown> | string) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-init-hostile-'));
  await writeFile(path.join(dir, 'compose.yaml'), typeof compose === 'string' ? compose : stringify(compose));
  const result = await initConfig({ ...base, file: path.join(dir, 'depl.yaml') });
  return { result, text: await readFile(result.file, 'utf8') };
}

describe('depl init from a hostile Compose file', () => {
  it.each(BREAKS)('writes only depl\'s keys, every value as written, with %s in names, keys and values', async (_name, br) => {
    const { result, text } = await initFrom(hostileCompose(br));
    const written = parse(text) as Record<string, Record<string, Record<string, unknown>>>;

    expect(Object.keys(written)).toEqual(['app', 'domain', 'provider', 'ssh', 'bootstrap', 'images', 'services', 'accessories', 'config']);
    for (const key of INJECTED) expect(written).not.toHaveProperty(key);
    expect(Object.keys(written.services!)).toEqual(['web', 'tool']);
    expect(written.services!.web).toMatchObject({
      build: { context: '.', dockerfile: `Dockerfile${br}hooks: x`, args: { [`ARG${br}registry: a`]: payload(br) } },
      command: ['node', payload(br), '---', '...', '- x', '# y', 'a: b'],
      env: { [`KEY${br}registry: evil`]: payload(br), DASH: '- item', DOCUMENTS: `---${br}...${br}--- !!str`, HASH: 'a # b', COLON: 'a: b' },
    });
    expect(written.services!.tool!.image).toBe(`busybox${br}hooks: x`);
    expect(written.accessories!.cache!.image).toBe(`redis:7${br}registry: evil`);
    expect(parseConfig(text).services.web!.env[`KEY${br}registry: evil`]).toBe(payload(br));

    // each note is one comment line, and no character that some reader takes for a line break is left raw
    const notes = text.split('\n').filter((line) => line.startsWith('#   - '));
    expect(notes).toHaveLength(result.notTranslated.length);
    expect(result.notTranslated.length).toBeGreaterThanOrEqual(8);
    expect(text).not.toMatch(/[\r\u0085\u2028\u2029]/);
  });

  it('keeps the text of a Compose file\'s own comments out of depl.yaml', async () => {
    const { text } = await initFrom('# registry: evil.example\nservices:\n  web: # hooks: {pre: [x]}\n    build: .\n    ports: ["3000"]\n');
    expect(Object.keys(parse(text) as object)).toEqual(['app', 'domain', 'provider', 'ssh', 'bootstrap', 'images', 'services', 'config']);
    expect(text).not.toContain('evil');
  });

  it('writes control characters and ANSI sequences as escapes, in values and notes', async () => {
    const { result, text } = await initFrom({
      services: { web: { build: '.', environment: { GREETING: '\u001b[31mred\u0007\u0000' }, [`x\u001b]0;owned\u0007\u001b[2J`]: 1 } },
    });
    expect((parse(text) as { services: { web: { env: Record<string, string> } } }).services.web.env.GREETING).toBe('\u001b[31mred\u0007\u0000');
    expect(text).toContain('GREETING: "\\e[31mred\\a\\0"');
    expect(text).toContain('#   - services.web.x\\u001b]0;owned\\u0007\\u001b[2J: is not a key of the Compose Specification depl knows');
    // eslint-disable-next-line no-control-regex -- control characters are what this matches
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f]/);
    expect(result.notTranslated).toContain('services.web.x\u001b]0;owned\u0007\u001b[2J: is not a key of the Compose Specification depl knows'); // the result keeps the text; printing escapes it
  });
});

describe('YAML that says exactly what was meant', () => {
  const intended = { app: 'shop', services: { web: { image: 'busybox', command: ['sh'] } }, config: {} };

  it('finds no difference in what yamlText renders, whatever the strings hold', () => {
    const strings = ['\n', '\r\n', '\u0085', '\u2028', '\u2029', '\u00a0', '\ufeff', '\u202e', '---', '...', '- x', '# c', 'a: b', '"', "'", '\\', '%x', '@x', '!!str', '&a', '*a', '<<', '? k', '{a}', '[a]', 'true', '0x10', '~', ''];
    for (const s of strings) {
      const value = { [`k${s}`]: `v${s}`, [s]: [s, `${s}tail`], plain: s };
      expect(renderedDifferences(yamlText({ value }), { value }), JSON.stringify(s)).toEqual([]);
    }
  });

  it('names every key added, missing or changed, and refuses a second document or broken YAML', () => {
    const text = yamlText(intended);
    expect(renderedDifferences(text, intended)).toEqual([]);
    expect(renderedDifferences(`${text}\nregistry: evil.example\nhooks: {pre: [x]}\n`, intended)).toEqual(['registry', 'hooks']);
    expect(renderedDifferences(text.replace('busybox', 'evil'), intended)).toEqual(['services.web.image']);
    expect(renderedDifferences(text.replace('config: {}', ''), intended)).toEqual(['config']);
    expect(renderedDifferences(`${text}\n---\nregistry: evil\n`, intended)).toEqual(['the text holds 2 YAML documents, not one']);
    expect(renderedDifferences(`${text}\napp: again\n`, intended)[0]).toMatch(/^the text is not clean YAML: Map keys must be unique/);
  });

  it('keeps a comment on its line whatever it quotes', () => {
    for (const br of ['\n', '\r', '\r\n', '\u0085', '\u2028', '\u2029']) {
      const comment = yamlComment(`services.web${br}registry: evil`);
      expect(comment).not.toMatch(/[\n\r\u0085\u2028\u2029]/);
      expect(parse(`${comment}\nconfig: {}\n`)).toEqual({ config: {} });
    }
  });
});
