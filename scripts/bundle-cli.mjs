#!/usr/bin/env node
/**
 * `depl --help` should start about as fast as Node itself. After tsc, the entry (dist/cli/main.js) is
 * rebuilt as one file holding all that `--help` loads (main, program and commander, converted from
 * CommonJS once here instead of on every start). Everything else stays a separate module, imported when a
 * command runs; the modules with process-wide state (src/util/*: the secret list redact() masks, the
 * interrupt cleanups; src/errors.ts: instanceof checks) must stay outside so that there is one copy of each.
 */
import { build } from 'esbuild';

const entry = new URL('../dist/cli/main.js', import.meta.url).pathname;
await build({
  entryPoints: [entry],
  outfile: entry,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minifySyntax: true,
  minifyWhitespace: true,
  external: ['./commands/*', './context.js', '../util/*', '../errors.js'],
  // commander is CommonJS and requires node: built-ins; an ES module has no `require` of its own
  banner: { js: "import { createRequire as __deplRequire } from 'node:module'; const require = __deplRequire(import.meta.url);" },
  logLevel: 'warning',
});

/**
 * The TLS renewal task that runs on the cluster (src/renewer/main.ts) is one self-contained file: depl
 * copies it to the manager, where the node image runs it with nothing installed beside it.
 */
const renewer = new URL('../dist/renewer/main.js', import.meta.url).pathname;
await build({
  entryPoints: [renewer],
  outfile: new URL('../dist/renewer.mjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  banner: { js: "import { createRequire as __deplRequire } from 'node:module'; const require = __deplRequire(import.meta.url);" },
  logLevel: 'warning',
});
