import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEntry, runCli } from '../support/cli.js';

/**
 * What the built CLI (npm run build) loads: `depl --help` as little as Node itself, and `depl switch`, up to
 * the moment it opens its SSH connection, only what a switch runs. A preload records every module (ES modules
 * through a loader hook, CommonJS files from require's cache, Node's own from process.moduleLoadList) and, at
 * the first outgoing TCP connection, writes them down and ends the process: no cluster is needed.
 */

/** Libraries that only other commands use (buildinst, node-up, tls, crawl, init): none belongs in a switch. */
const NOT_IN_A_SWITCH = ['dockerode', 'docker-modem', 'acme-client', 'execa', '@inquirer', 'tar-fs', 'tar-stream', 'undici', 'diff', 'yazl', 'p-limit', '@depl/crawler'];
/** ssh2's parts a client never runs (src/apply/ssh2-client.ts). */
const NOT_FROM_SSH2 = ['ssh2/lib/server.js', 'ssh2/lib/keygen.js', 'ssh2/lib/http-agents.js'];
/**
 * Bytes of depl's own bundles a switch compiles before it connects: 608 KB on 2026-12-07 (1,043 KB before zod's
 * locales were left out). Another library in the switch path shows here (undici alone is 730 KB).
 */
const SWITCH_BUNDLE_BUDGET = 750_000;

const RECORDER = `
import { register, createRequire } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
const esm = [];
const { port1, port2 } = new MessageChannel();
port1.on('message', (url) => esm.push(url));
port1.unref();
register('./hooks.mjs', { parentURL: import.meta.url, data: { port: port2 }, transferList: [port2] });
const before = new Set(process.moduleLoadList);
const connect = net.Socket.prototype.connect;
let seen = false;
net.Socket.prototype.connect = function (...args) {
  if (!seen) {
    seen = true;
    // the hook thread's last messages arrive on the next turns of the event loop
    setTimeout(() => {
      const cjs = Object.keys(createRequire(import.meta.url).cache);
      const builtins = process.moduleLoadList.filter((m) => !before.has(m));
      writeFileSync(process.env.DEPL_TEST_LOADED, JSON.stringify({ esm, cjs, builtins }));
      process.exit(0);
    }, 200);
  }
  return connect.apply(this, args);
};
`;
const HOOKS = `
let port;
export function initialize(data) { port = data.port; }
export async function load(url, context, next) { port.postMessage(url); return next(url, context); }
`;
/** For --help: Node's own modules loaded after start-up, written at exit. */
const BUILTINS_AT_EXIT = `
const before = new Set(process.moduleLoadList);
process.on('exit', () => require('node:fs').writeFileSync(process.env.DEPL_TEST_LOADED, JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m)))));
`;

describe('what the built CLI loads', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-modules-'));
    await writeFile(path.join(dir, 'record.mjs'), RECORDER);
    await writeFile(path.join(dir, 'hooks.mjs'), HOOKS);
    await writeFile(path.join(dir, 'builtins-at-exit.cjs'), BUILTINS_AT_EXIT);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('depl --help loads none of Node\'s process, network or stream modules', async () => {
    const loaded = path.join(dir, 'help.json');
    // a pipe, as a script or `| less` reads it (a terminal gets commander's own process.stdout output)
    const run = await execa('node', ['-r', path.join(dir, 'builtins-at-exit.cjs'), cliEntry, '--help'], { env: { DEPL_TEST_LOADED: loaded }, stdin: 'ignore' });
    expect(run.stdout).toMatch(/^Usage: depl/);
    const builtins = JSON.parse(await readFile(loaded, 'utf8')) as string[];
    expect(builtins.filter((m) => /^NativeModule (child_process|net|dgram|stream|http|https|tls|crypto)$/.test(m))).toEqual([]);
  });

  it('depl switch loads, until it connects to the manager, only what a switch runs', async () => {
    const project = path.join(dir, 'project');
    await mkdir(project);
    const init = await runCli(['init', '--example', 'crawler', '--app', 'shop', '--yes'], { cwd: project });
    expect(init.exitCode, init.stderr).toBe(0);
    await writeFile(path.join(project, '.depl', 'inventory.json'), JSON.stringify({
      version: 1, app: 'shop', provider: 'local', network: 'shop-net', updatedAt: new Date().toISOString(),
      nodes: [{ name: 'shop-node-1', address: '127.0.0.1', role: 'manager' }],
    }));
    const loaded = path.join(dir, 'switch.json');
    const recordSwitch = () => execa('node', ['--import', path.join(dir, 'record.mjs'), cliEntry, 'switch', 'v2'], { cwd: project, env: { DEPL_TEST_LOADED: loaded, NO_COLOR: '1' }, stdin: 'ignore', reject: false });
    // the first command makes the cluster's key pair (node-up does, on a real cluster), with ssh2's key generator
    expect((await recordSwitch()).exitCode).toBe(0);
    const run = await recordSwitch();
    expect(run.exitCode, run.stderr).toBe(0);
    const { esm, cjs, builtins } = JSON.parse(await readFile(loaded, 'utf8')) as { esm: string[]; cjs: string[]; builtins: string[] };
    const files = [...esm.filter((u) => u.startsWith('file:')).map((u) => fileURLToPath(u)), ...cjs];
    expect(files.some((f) => f.includes(`${path.sep}ssh2${path.sep}lib${path.sep}client.js`)), 'reached the SSH connection').toBe(true);
    const fromPackages = files.filter((f) => NOT_IN_A_SWITCH.some((name) => f.includes(`node_modules${path.sep}${name}${path.sep}`)) || NOT_FROM_SSH2.some((part) => f.endsWith(part)));
    expect(fromPackages).toEqual([]);
    // libraries bundled into depl's own files keep their paths in esbuild's CommonJS wrappers
    const bundles = files.filter((f) => f.startsWith(path.dirname(path.dirname(cliEntry))) && f !== cliEntry);
    const texts = await Promise.all(bundles.map((f) => readFile(f, 'utf8')));
    const bundled = texts.flatMap((t, i) => NOT_IN_A_SWITCH.filter((name) => t.includes(`"node_modules/${name}/`)).map((name) => `${name} in ${bundles[i]}`));
    expect(bundled).toEqual([]);
    const bytes = (await Promise.all(bundles.map((f) => stat(f)))).reduce((sum, s) => sum + s.size, 0);
    expect(bytes).toBeLessThan(SWITCH_BUNDLE_BUDGET);
    expect(builtins.filter((m) => /^NativeModule (tls|https|internal\/crypto\/webcrypto)$/.test(m))).toEqual([]);
  });
});
