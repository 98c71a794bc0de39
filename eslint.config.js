import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const ioModules = ['fs', 'node:fs', 'fs/promises', 'node:fs/promises', 'child_process', 'node:child_process',
  'net', 'node:net', 'http', 'node:http', 'https', 'node:https', 'dgram', 'node:dgram', 'dns', 'node:dns',
  'ssh2', 'dockerode', 'undici', 'ioredis', 'execa'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'coverage/**', 'crawler/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { URL: 'readonly', console: 'readonly', process: 'readonly' } },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // plan/ computes what to do; it must stay pure so it can be unit-tested as data.
    files: ['src/plan/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ioModules.map((name) => ({ name, message: 'src/plan/ is pure: do I/O in src/apply/ and pass results in.' })),
        patterns: [{ group: ['**/apply/**', '**/workflows/**', '**/cli/**'], message: 'src/plan/ must not depend on effectful layers.' }],
      }],
      'no-restricted-globals': ['error', { name: 'fetch', message: 'src/plan/ is pure: no network.' }],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now', message: 'src/plan/ is pure: pass time in.' }],
    },
  },
  {
    // plan/ reads config/'s types; config/ importing plan/ would make the two a cycle (shared checks: src/names.ts).
    files: ['src/config/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/plan/**', '**/apply/**', '**/workflows/**', '**/cli/**'], message: 'src/config/ is imported by plan/ and must not import it back; shared name checks live in src/names.ts.' }] }],
    },
  },
  {
    // the crawler is an application deployed by depl (its own workspace package); it never reaches into the
    // operator tool, whose modules are not in its image.
    files: ['crawler/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/src/cli/**', '**/src/apply/**', '**/src/workflows/**', '**/src/plan/**', '../../src/**', '../../../src/**', 'depl', 'depl/**'], message: 'the crawler package never imports depl (cli/, apply/, workflows/, plan/): it is deployed without them.' }] }],
    },
  },
  {
    // An import cycle makes a module's meaning depend on load order and hides behind lazy imports; the layers
    // (cli -> workflows -> apply/plan) stay a tree. Type-only imports erase at build time and are not cycles.
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  {
    // cli/ parses arguments and prints; it reaches the cluster only through workflows/ (the cluster port).
    files: ['src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/apply/**'], message: 'src/cli/ reaches the cluster through src/workflows/ (the cluster port), never src/apply/ directly.' }] }],
    },
  },
);
