import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { parseSecretsFile } from '../../src/plan/secrets.js';
import { cliEntry, runCli, repoRoot } from '../support/cli.js';
import { removeByPrefix } from '../support/cluster.js';
import { upOneNodeWithOfflinePostgres } from '../support/compose-cluster.js';

/**
 * "Deploy your own app": a team with a compose.yaml (a web service and a worker from one build, Redis and
 * PostgreSQL with volumes, a password in the environment) runs `depl init` in its folder and deploys the
 * result on a local cluster. The web service answers through the edge only when it reaches both accessories
 * by name and has its password from the swarm secret; PostgreSQL accepts that password and no other.
 */
describe('depl init from a compose file, deployed', () => {
  let dir: string;
  let prefix: string;
  let configFile: string;
  const app = `cmp${randomBytes(2).toString('hex')}`;
  const domain = `${app}.localhost`;
  const cli = (args: string[], timeoutMs = 600_000) => runCli([...args, '--config', configFile], { cwd: dir, timeoutMs });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-compose-'));
    await cp(path.join(repoRoot, 'test', 'fixtures', 'compose-app'), dir, { recursive: true });
    prefix = `dc-${randomBytes(3).toString('hex')}`;
    configFile = path.join(dir, 'depl.yaml');
  });

  afterAll(async () => {
    await removeByPrefix(prefix);
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a depl.yaml that validates, lists what it did not translate and keeps the password out of it', async () => {
    const init = await cli(['init', '--app', app, '--domain', domain]);
    expect(init.exitCode, init.stderr).toBe(0);
    expect(init.stdout).toContain('from compose.yaml');
    expect(init.stdout).toMatch(/services\.web\.volumes: "\.\/static:\/app\/static" is a writable bind/);
    expect(init.stdout).toMatch(/services\.web\.networks: depl puts every service/);
    expect(init.stdout).toContain('Generated postgres_password');
    const text = await readFile(configFile, 'utf8');
    expect(text).not.toContain('only-for-local-compose');
    const config = parseConfig(text);
    expect(Object.keys(config.services)).toEqual(['web', 'worker']);
    expect(Object.keys(config.accessories)).toEqual(['redis', 'db']);
    expect(config.services.worker).toMatchObject({ from: 'web', command: ['node', 'app.js', 'worker'] });
    expect((await runCli(['init', '--config', configFile], { cwd: dir })).exitCode).toBe(2); // never overwritten
  });

  it('deploys: node-up, buildinst, switch, and the web service answers through the edge', async () => {
    // no registry here: postgres:16 is made offline (redis:7 and node are depl's own offline images)
    await upOneNodeWithOfflinePostgres(configFile, prefix, cli);

    const install = await cli(['buildinst', '--version', 'v1', '--json']);
    expect(install.exitCode, install.stderr.slice(-3000)).toBe(0);
    const switched = await cli(['switch', 'v1']);
    expect(switched.exitCode, switched.stderr.slice(-2000)).toBe(0);

    const status = JSON.parse((await cli(['status', '--json'])).stdout) as { nodes: { address: string }[]; live: string };
    expect(status.live).toBe('v1');
    const edge = status.nodes[0]!.address;
    const health = await execa('curl', ['-sS', '--max-time', '10', '-H', `Host: ${domain}`, `http://${edge}/healthz`], { reject: false });
    expect(JSON.parse(health.stdout)).toEqual({ db: true, redis: true, password: true, path: '/healthz' });

    // PostgreSQL was initialised with the secret's value, and refuses another password
    const node = `${prefix}-node-1`;
    const db = (await execa('docker', ['exec', node, 'docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${app}-db`])).stdout.trim();
    expect(db).not.toBe('');
    const psql = (password: string) => execa('docker', ['exec', '-e', `PGPASSWORD=${password}`, node, 'docker', 'exec', '-e', `PGPASSWORD=${password}`, db,
      'psql', '-h', '127.0.0.1', '-U', 'app', '-d', 'postgres', '-tAc', 'select 42'], { reject: false });
    const secret = parseSecretsFile(await readFile(path.join(dir, '.depl', 'secrets'), 'utf8')).find((e) => e.name === 'postgres_password')?.value;
    expect(secret).toBeTruthy();
    expect((await psql(secret!)).stdout.trim()).toBe('42');
    expect((await psql('only-for-local-compose')).exitCode).not.toBe(0);
  });

  it('deploys a branch through the CI recipe, and prunes it once the branch is gone', async () => {
    const script = path.join(repoRoot, 'templates', 'ci', 'deploy-branch.sh');
    const env = { DEPL: `node ${cliEntry} --config ${configFile}`, DEPL_LOCK_WAIT: '5m', GITHUB_OUTPUT: path.join(dir, 'github-output') };
    const deploy = await execa(script, ['deploy', 'Feature/Shiny_Thing'], { cwd: dir, env, reject: false, timeout: 600_000 });
    expect(deploy.exitCode, deploy.stderr.slice(-2000)).toBe(0);
    expect(deploy.stdout).toContain(`Preview: http://feature-shiny-thing-7c7c99.${domain}/`);
    expect(await readFile(env.GITHUB_OUTPUT, 'utf8')).toBe(`url=http://feature-shiny-thing-7c7c99.${domain}/\n`);
    const status = JSON.parse((await cli(['status', '--json'])).stdout) as { nodes: { address: string }[]; versions: unknown[] };
    const preview = await execa('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Host: feature-shiny-thing-7c7c99.${domain}`, `http://${status.nodes[0]!.address}/healthz`]);
    expect(preview.stdout).toBe('200');

    const prune = await execa(script, ['prune', 'main', 'feature/other'], { cwd: dir, env, reject: false, timeout: 300_000 });
    expect(prune.exitCode, prune.stderr.slice(-2000)).toBe(0);
    expect(prune.stdout).toContain('Removed feature-shiny-thing-7c7c99');
    const versions = JSON.stringify(JSON.parse((await cli(['versions', '--json'])).stdout));
    expect(versions).toContain('v1');
    expect(versions).not.toContain('feature-shiny-thing-7c7c99');
    // a deploy without a branch name is a usage error, before anything runs
    const nameless = await execa(script, ['deploy'], { cwd: dir, env: { ...env, GITHUB_HEAD_REF: '', GITHUB_REF_NAME: '', CI_COMMIT_REF_NAME: '' }, reject: false });
    expect(nameless.exitCode).toBe(2);
  });
});
