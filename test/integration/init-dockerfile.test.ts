import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { runCli } from '../support/cli.js';
import { freeSubnet, removeByPrefix } from '../support/cluster.js';

/**
 * "Your own app runs as it does under docker": a plain Node app (`COPY . .`, `CMD ["node", "server.js"]`, no
 * ENTRYPOINT) from `depl init --from Dockerfile`, deployed on a 1-node local cluster, answers through the edge
 * with the image's own command and finds its config document through DEPL_CONFIG_FILE. The next version makes the
 * server the image's ENTRYPOINT: `depl run --entrypoint` then runs a one-off command instead of a second server,
 * and `--timeout` stops a job that runs on.
 */
const SERVER = `// answers with what it was started with and the config document depl handed it
const http = require('node:http');
const { readFileSync } = require('node:fs');
const server = http.createServer((req, res) => {
  if (req.url === '/healthz') { res.end('ok'); return; }
  const config = JSON.parse(readFileSync(process.env.DEPL_CONFIG_FILE, 'utf8'));
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ argv: process.argv.slice(2), config, configUrl: process.env.DEPL_CONFIG_URL }));
});
server.listen(3000);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

// no registry here: NODE_IMAGE is the offline node image buildinst passes in (images.node)
const dockerfile = (run: string) => `ARG NODE_IMAGE=node:20-bookworm-slim
FROM \${NODE_IMAGE}
WORKDIR /app
COPY . .
EXPOSE 3000
${run}
`;

describe('depl init --from Dockerfile: the image runs as docker run runs it', () => {
  let dir: string;
  let configFile: string;
  let edge: string;
  const prefix = `dd-${randomBytes(3).toString('hex')}`;
  const app = `dkf${randomBytes(2).toString('hex')}`;
  const domain = `${app}.localhost`;
  const greeting = `hello-${randomBytes(3).toString('hex')}`;
  // depl.yaml is in dir, where depl looks by default: no --config, which `depl run` would take as part of the job's command
  const cli = (args: string[], timeoutMs = 600_000) => runCli(args, { cwd: dir, timeoutMs });
  const viaEdge = async (host: string) => {
    const got = await execa('curl', ['-sS', '--max-time', '10', '-H', `Host: ${host}`, `http://${edge}/`], { reject: false });
    return JSON.parse(got.stdout) as { argv: string[]; config: Record<string, unknown>; configUrl: string };
  };
  const jobsLeft = async () => (await execa('docker', ['exec', `${prefix}-node-1`, 'docker', 'service', 'ls', '--format', '{{.Name}}',
    '--filter', `label=depl.app=${app}`, '--filter', 'label=depl.job=run'])).stdout.split('\n').filter(Boolean);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-dockerfile-'));
    configFile = path.join(dir, 'depl.yaml');
    await writeFile(path.join(dir, 'server.js'), SERVER);
    await writeFile(path.join(dir, 'Dockerfile'), dockerfile('CMD ["node", "server.js"]'));
  });

  afterAll(async () => {
    await removeByPrefix(prefix);
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a depl.yaml that runs the image unchanged: no command, no --config', async () => {
    const init = await cli(['init', '--from', 'Dockerfile', '--app', app, '--domain', domain, '--port', '3000', '--health', '/healthz']);
    expect(init.exitCode, init.stderr).toBe(0);
    const config = parseConfig(await readFile(configFile, 'utf8'));
    expect(config.services.web).toMatchObject({ port: 3000, http: true, health: '/healthz', configArg: false });
    expect(config.services.web!.command).toBeUndefined();
  });

  it("deploys: node-up, buildinst, switch; the image's CMD serves through the edge with the config document as a file", async () => {
    const document = parseDocument(await readFile(configFile, 'utf8'));
    document.setIn(['provider', 'subnet'], await freeSubnet());
    document.setIn(['provider', 'prefix'], prefix);
    document.setIn(['provider', 'nodes'], 1);
    document.setIn(['config'], { greeting });
    await writeFile(configFile, document.toString());

    const up = await cli(['node-up']);
    expect(up.exitCode, up.stderr.slice(-2000)).toBe(0);
    const install = await cli(['buildinst', '--version', 'v1']);
    expect(install.exitCode, install.stderr.slice(-3000)).toBe(0);
    const switched = await cli(['switch', 'v1']);
    expect(switched.exitCode, switched.stderr.slice(-2000)).toBe(0);

    const status = JSON.parse((await cli(['status', '--json'])).stdout) as { nodes: { address: string }[]; live: string };
    expect(status.live).toBe('v1');
    edge = status.nodes[0]!.address;
    for (const host of [domain, `v1.${domain}`]) {
      expect(await viaEdge(host)).toEqual({ argv: [], config: { greeting }, configUrl: 'file:///run/depl/config.json' });
    }
  });

  it('with the server as ENTRYPOINT: the version serves, and depl run --entrypoint runs a one-off command instead', async () => {
    await writeFile(path.join(dir, 'Dockerfile'), dockerfile('ENTRYPOINT ["node", "server.js", "from-entrypoint"]'));
    const install = await cli(['buildinst', '--version', 'v2']);
    expect(install.exitCode, install.stderr.slice(-3000)).toBe(0);
    const switched = await cli(['switch', 'v2']);
    expect(switched.exitCode, switched.stderr.slice(-2000)).toBe(0);
    expect((await viaEdge(domain)).argv).toEqual(['from-entrypoint']);

    const job = await cli(['run', '--entrypoint', 'sh', 'web', '--', '-c', 'echo hi; cat "$DEPL_CONFIG_FILE"; exit 4']);
    expect(job.exitCode, job.stderr).toBe(4);
    expect(job.stdout).toBe(`hi\n${JSON.stringify({ greeting }, null, 2)}`);
    expect(await jobsLeft()).toEqual([]);
  });

  it('--timeout stops and removes a job that runs on, and fails naming the timeout', async () => {
    const started = Date.now();
    const job = await cli(['run', '--timeout', '3s', '--entrypoint', 'sh', 'web', '--', '-c', 'echo started; sleep 60']);
    expect(job.exitCode, job.stderr).toBe(1);
    expect(job.stdout).toBe('started');
    expect(job.stderr).toMatch(/did not finish within --timeout 3s: stopped and removed/);
    expect(Date.now() - started).toBeLessThan(50_000);
    expect(await jobsLeft()).toEqual([]);
  });
});
