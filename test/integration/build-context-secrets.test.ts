import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { contextFiles } from '../../src/apply/build-context.js';
import { runCli } from '../support/cli.js';
import { freeSubnet, removeByPrefix } from '../support/cluster.js';

/**
 * A user's app built from its project folder, where depl keeps the cluster's SSH key and the rest of `.depl/`:
 * a Dockerfile that copies the whole folder into the image (`COPY . .`) and a .dockerignore that tries to send
 * `.depl/` and depl.yaml anyway. Deployed with `depl init --from Dockerfile`, `node-up` and `buildinst` on a
 * 1-node local cluster, the image holds the app's files and none of depl's; a private key left in the folder
 * stops buildinst with exit 2 before anything is built.
 */
describe("a project folder's build context, deployed", () => {
  let dir: string;
  let prefix: string;
  let configFile: string;
  const app = `ctx${randomBytes(2).toString('hex')}`;
  // --config first: after `run web --`, everything is the job's command
  const cli = (args: string[], timeoutMs = 600_000) => runCli(['--config', configFile, ...args], { cwd: dir, timeoutMs });
  // the user's wish, after depl init's lines: in .dockerignore the last matching line wins
  const reinclude = '!.depl\n!.depl/**\n!depl.yaml\n';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-ctx-secrets-'));
    prefix = `cs-${randomBytes(3).toString('hex')}`;
    configFile = path.join(dir, 'depl.yaml');
    await writeFile(path.join(dir, 'Dockerfile'), [
      'ARG NODE_IMAGE=node:20-bookworm-slim',
      'FROM ${NODE_IMAGE}',
      'WORKDIR /app',
      'COPY . .',
      'EXPOSE 8080',
      // the server as ENTRYPOINT, whatever arguments the service is given; a command (a depl run job) runs instead
      'ENTRYPOINT ["/bin/sh", "/app/entry.sh"]',
      '',
    ].join('\n'));
    await writeFile(path.join(dir, 'entry.sh'), 'case "${1:-}" in ""|-*) exec node /app/server.js ;; *) exec "$@" ;; esac\n');
    await writeFile(path.join(dir, 'server.js'), "require('http').createServer((req, res) => res.end('ok\\n')).listen(8080);\n");
    await writeFile(path.join(dir, '.dockerignore'), `node_modules\n${reinclude}`);
  });

  afterAll(async () => {
    await removeByPrefix(prefix);
    await rm(dir, { recursive: true, force: true });
  });

  it('init from the Dockerfile adds depl\'s files to the existing .dockerignore, after the user\'s lines', async () => {
    const init = await cli(['init', '--from', 'Dockerfile', '--app', app, '--domain', `${app}.localhost`, '--port', '8080', '--health', '/']);
    expect(init.exitCode, init.stderr).toBe(0);
    expect(init.stdout).toContain(`in ${path.join(dir, '.dockerignore')}`);
    const ignore = await readFile(path.join(dir, '.dockerignore'), 'utf8');
    expect(ignore.startsWith(`node_modules\n${reinclude}`)).toBe(true);
    expect(ignore).toMatch(/\n\.depl\ndepl\.yaml\n/);
  });

  it('builds and installs an image without .depl/ or depl.yaml, though .dockerignore re-includes them; a private key in the folder is refused first', async () => {
    await appendFile(path.join(dir, '.dockerignore'), reinclude);
    const document = parseDocument(await readFile(configFile, 'utf8'));
    document.setIn(['provider', 'subnet'], await freeSubnet());
    document.setIn(['provider', 'prefix'], prefix);
    document.setIn(['provider', 'nodes'], 1);
    document.setIn(['services', 'web', 'replicas'], 1);
    await writeFile(configFile, document.toString());

    const up = await cli(['node-up']);
    expect(up.exitCode, up.stderr.slice(-2000)).toBe(0);
    // what .dockerignore alone lets through: the cluster's key and depl.yaml (what a build sent before)
    const byDockerignore = await contextFiles(dir, { paths: [], names: [], backups: null });
    expect(byDockerignore).toEqual(expect.arrayContaining(['.depl/id_ed25519', '.depl/known_hosts', 'depl.yaml']));

    // a private key of the user's own in the folder: refused with exit 2 before anything is built
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    await writeFile(path.join(dir, 'deploy.pem'), key, { mode: 0o600 });
    const refused = await cli(['buildinst', '--version', 'v0']);
    expect(refused.exitCode, refused.stderr).toBe(2);
    expect(refused.stderr).toContain('deploy.pem: a private key (BEGIN RSA PRIVATE KEY)');
    expect(refused.stderr).toContain(`Add it to ${path.join(dir, '.dockerignore')}`);
    const images = await execa('docker', ['exec', `${prefix}-node-1`, 'docker', 'image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(images.stdout).not.toContain(`${app}/web`);
    await rm(path.join(dir, 'deploy.pem'));

    const install = await cli(['buildinst', '--version', 'v1']);
    expect(install.exitCode, install.stderr.slice(-3000)).toBe(0);
    const listing = await cli(['run', 'web', '--version', 'v1', '--', 'ls', '-a', '/app']);
    expect(listing.exitCode, listing.stderr).toBe(0);
    const names = listing.stdout.split('\n').map((line) => line.trim()).filter((line) => line.length > 0);
    expect(names).toEqual(expect.arrayContaining(['Dockerfile', 'entry.sh', 'server.js', '.dockerignore']));
    expect(names).not.toContain('.depl');
    expect(names).not.toContain('depl.yaml');
  });
});
