#!/usr/bin/env node
/**
 * `depl` should start about as fast as Node itself, and a command should load only what it runs. After tsc,
 * two esbuild passes rebuild the CLI:
 * 1. the entry, dist/cli/main.cjs: one CommonJS file holding all that `--help` loads (main, program and
 *    commander): Node runs a CommonJS entry without starting its ES module loader, which cost `depl --help`
 *    a tenth of Node's own start; a command's first `import()` starts it, when the command needs it anyway.
 *    The commands, the context and the modules with process-wide state stay separate ES module files it
 *    imports when a command runs;
 * 2. those files (dist/cli/commands/*.js, dist/cli/context.js, dist/errors.js, dist/util/*.js) keep their
 *    paths, each bundled with what it imports, code splitting putting what several share in dist/chunks/ so
 *    that each module exists once (src/util/redact.ts's secret list, src/errors.ts's classes for instanceof).
 *    One file per command instead of a hundred small modules is most of a command's start: Node spends it
 *    finding, reading and linking files.
 *
 * Bundled with depl's code: the pure-JavaScript dependencies the common commands load (zod, yaml, diff,
 * commander, undici). Left as they are in node_modules: those with native add-ons or files read at run time
 * (ssh2, dockerode), the large ones only a few commands load (acme-client, execa, tar-fs, prompts), and the
 * crawler's own package. What tsc wrote and the bundles now hold is removed.
 *
 * The chunks are two folders below the package root, as dist/<folder>/ is: src/util/paths.ts finds
 * templates/, heat/ and ansible/ from there.
 */
import { build } from 'esbuild';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const common = {
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minifySyntax: true,
  minifyWhitespace: true,
  metafile: true,
  // the CommonJS dependencies bundled here require node: built-ins; an ES module has no `require` of its own
  banner: { js: "import { createRequire as __deplRequire } from 'node:module'; const require = __deplRequire(import.meta.url);" },
  logLevel: 'warning',
};

/**
 * commander requires node:child_process at load for the one thing depl never does with it (run a subcommand
 * as a separate executable); Node's child_process loads net, dgram and the stream modules with it, a tenth of
 * `depl --help`'s start. In the entry the module is required when a property of it is first read.
 */
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) => (args.namespace === 'lazy-child-process' ? { path: 'node:child_process', external: true } : { path: 'child_process', namespace: 'lazy-child-process' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-child-process' }, () => ({
      contents: "let loaded; module.exports = new Proxy({}, { get: (_, key) => (loaded ??= require('node:child_process'))[key] });",
      loader: 'js',
    }));
  },
};

const entry = await build({
  ...common,
  format: 'cjs',
  banner: {},
  plugins: [lazyChildProcess],
  entryPoints: [path.join(dist, 'cli', 'main.js')],
  outfile: path.join(dist, 'cli', 'main.cjs'),
  external: ['./commands/*', './context.js', '../util/*', '../errors.js'],
});

/**
 * An ES module that imports a Node built-in gets all of its exports at once, lazy ones included: \`node:crypto\`
 * brings WebCrypto, \`node:util\` the argument parser and MIME types, \`node:http\` its whole stack. Required
 * (through each file's \`require\`, the banner's), a built-in gives what the code reads, when it reads it.
 */
const builtinsRequired = {
  name: 'builtins-required',
  setup(b) {
    // one wrapper per importing file: a wrapper shared by several commands would be a chunk file of its own
    b.onResolve({ filter: /^node:/ }, (args) => (args.namespace === 'builtin-required' ? { path: args.path, external: true } : { path: `${args.path} ${path.relative(dist, args.importer)}`, namespace: 'builtin-required' }));
    b.onLoad({ filter: /.*/, namespace: 'builtin-required' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path.split(' ')[0])});`, loader: 'js' }));
  },
};

const dir = async (sub) => (await readdir(path.join(dist, sub))).filter((f) => f.endsWith('.js')).map((f) => path.join(dist, sub, f));
const loaded = await build({
  ...common,
  entryPoints: [...(await dir('cli/commands')), path.join(dist, 'cli', 'context.js'), path.join(dist, 'errors.js'), ...(await dir('util'))],
  outdir: dist,
  outbase: dist,
  entryNames: '[dir]/[name]',
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  plugins: [builtinsRequired],
  external: [
    'ssh2', 'cpu-features', 'dockerode', 'docker-modem', 'acme-client', 'execa', 'tar-fs', '@inquirer/prompts',
    '@balena/dockerignore', 'p-limit', '@depl/crawler', '@depl/crawler/*',
  ],
});

/** A program that runs on the cluster as one self-contained file: depl copies it to the manager, where the node image runs it with nothing installed beside it. */
const clusterProgram = (source, bundleName) => build({
  ...common,
  entryPoints: [path.join(dist, source)],
  outfile: path.join(dist, bundleName),
  minify: true,
  legalComments: 'none',
});

// the TLS renewal task (src/tls-renewer/main.ts), and the engine gate (src/engine-gate/main.ts), the one program
// beside it, and beside each autoscale controller (in the controller's image), with the Docker socket
const renewer = await clusterProgram('tls-renewer/main.js', 'tls-renewer.mjs');
const gate = await clusterProgram('engine-gate/main.js', 'engine-gate.mjs');

const kept = new Set([entry, loaded, renewer, gate].flatMap((b) => Object.keys(b.metafile.outputs)).map((f) => path.resolve(f)));
async function prune(folder) {
  for (const item of await readdir(folder, { withFileTypes: true })) {
    const file = path.join(folder, item.name);
    if (item.isDirectory()) await prune(file);
    else if (!kept.has(file)) await rm(file);
  }
  if ((await readdir(folder)).length === 0) await rm(folder, { recursive: true });
}
await prune(dist);
