#!/usr/bin/env node
/**
 * The autoscale controller (src/autoscaler/main.ts) runs in the swarm from a tiny image: the node base image
 * plus this one file, with everything it imports (the pure decision in src/plan/autoscale.ts, zod) bundled in.
 */
import { build } from 'esbuild';

await build({
  entryPoints: [new URL('../src/autoscaler/main.ts', import.meta.url).pathname],
  // (a test bundles it elsewhere, to start it as the image would)
  outfile: process.env.DEPL_AUTOSCALER_OUTFILE ?? new URL('../dist/autoscaler/autoscaler.mjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  // a CommonJS dependency bundled here may require a node: built-in; an ES module has no `require` of its own
  banner: { js: "import { createRequire as __deplRequire } from 'node:module'; const require = __deplRequire(import.meta.url);" },
  logLevel: 'warning',
});
