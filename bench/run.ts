/**
 * `npm run bench [name...]`: every benchmark measures depl against a peer in the same run and prints
 * ratios, never absolute figures alone. Not part of `npm test`: timings are not assertions.
 * Each bench/<name>.ts exports `main(): Promise<string[]>` (the lines to print).
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

const all = ['cli-start', 'crawl', 'switch', 'switch-cluster', 'node-up'];
const chosen = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = chosen.length > 0 ? chosen : all;

console.log(`depl benchmarks, ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
let failed = 0;
for (const name of names) {
  if (!all.includes(name)) {
    console.error(`unknown benchmark "${name}"; have: ${all.join(', ')}`);
    process.exit(2);
  }
  console.log(`\n## ${name}`);
  try {
    const mod = (await import(path.join(here, `${name}.ts`))) as { main: () => Promise<string[]> };
    for (const line of await mod.main()) console.log(line);
  } catch (error) {
    failed++;
    console.log(`FAILED: ${(error as Error).message}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
