/**
 * `npm run bench [name...]`: every benchmark measures depl against a peer in the same run and prints
 * ratios, never absolute figures alone. Not part of `npm test`: timings are not assertions.
 * Each bench/<name>.ts exports `main(): Promise<string[]>` (the lines to print).
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDockerEngine, type DockerEngine } from '../src/apply/host/docker-engine.js';
import { createLogger } from '../src/util/log.js';

const here = path.dirname(fileURLToPath(import.meta.url));

const all = ['cli-start', 'crawl', 'switch', 'switch-cluster', 'node-up'];
const chosen = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = chosen.length > 0 ? chosen : all;

console.log(`depl benchmarks, ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
// the cluster benchmarks need a Docker Engine, as the integration tests do (test/support/global-setup.ts):
// the running one, or one started here and stopped (by its pid) when the benchmarks end
const needsEngine = ['switch-cluster', 'node-up'];
let engine: DockerEngine | undefined;
if (names.some((n) => needsEngine.includes(n))) engine = await ensureDockerEngine(createLogger());
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
await engine?.stop();
process.exit(failed > 0 ? 1 : 0);
