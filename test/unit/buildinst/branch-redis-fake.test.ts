import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { recordName } from '../../../src/plan/branch-database.js';
import type { SecretDocument } from '../../../src/plan/services.js';
import { Secret } from '../../../src/util/secret.js';
import { pruneVersions } from '../../../src/workflows/prune.js';
import { fakeBuildinst } from '../../support/fake-buildinst.js';
import { fakeBranchDatabases, Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * Redis branch slots on the fake cluster (src/plan/branch-redis.ts): a branch deploy gets the lowest free
 * database number before its release phase, recorded only once the number was found empty; two branches never
 * share one; a killed buildinst or prune is finished by the next; prune backs the keys up, flushes the number and
 * frees it.
 */
const yaml = `
app: shop
domain: shop.test
services:
  worker: { image: "shop:1", env: { REDIS_URL: "redis://redis:6379" }, secrets: [redis_password] }
accessories:
  redis:
    image: "redis:7"
    command: [redis-server, --databases, "3"]
    secrets: [redis_password]
    perBranch: database
secrets: [redis_password]
release: { service: worker, command: [migrate, up] }
`;

let fake: FakeCluster;
let backups: string;
beforeEach(async () => {
  fake = await startFakeCluster({ versions: [] });
  backups = await mkdtemp(path.join(tmpdir(), 'depl-redis-backups-'));
});
afterEach(async () => {
  await fake.close();
  await rm(backups, { recursive: true, force: true });
});

const secrets: SecretDocument[] = [{ secret: 'redis_password', name: 'shop-redis_password-1', data: new Secret('pw'), labels: { 'depl.app': 'shop' } }];
const { buildinst } = fakeBuildinst(() => fake, yaml);
const branchDeploy = (branch: string, killAfter?: number) => buildinst(branch.replace(/\//g, '-'), killAfter, { branch, secrets });
const records = async () => (await fake.freshControl().install!.branchDatabases()).map((r) => `${r.version}=${recordName(r)}`).sort();
const prune = (branches: string[], afterStep?: (index: number) => void) => pruneVersions({ ...fake.freshControl(), branchDatabases: fakeBranchDatabases(fake, parseConfig(yaml), backups) }, { branches }, afterStep ? { afterStep } : {});
const releaseEnv = (label: string) => {
  const job = [...fake.swarm.jobs.values()].find((j) => (j.Name as string).startsWith('shop-release-') && (j.Labels as Record<string, string>)['depl.job.version'] === label) as { TaskTemplate: { ContainerSpec: { Env: string[] } } };
  return job.TaskTemplate.ContainerSpec.Env;
};

describe('Redis branch databases on the fake cluster', () => {
  it('each branch gets its own number before its release phase, the main line keeps 0; the third is refused with nothing changed', async () => {
    await buildinst('v1', undefined, { secrets });
    expect(await records()).toEqual([]);
    fake.swarm.calls.length = 0;
    await branchDeploy('feature/a');
    const calls = fake.swarm.calls;
    const check = calls.findIndex((c) => c.startsWith('run-job shop-database-redis-'));
    expect(check).toBeGreaterThan(-1);
    expect(check).toBeLessThan(calls.findIndex((c) => c.startsWith('ensure-secret shop-redis-db-')));
    expect(calls.findIndex((c) => c.startsWith('ensure-secret shop-redis-db-'))).toBeLessThan(calls.findIndex((c) => c.startsWith('run-job shop-release-')));
    expect(releaseEnv('feature-a')).toContain('REDIS_URL=redis://redis:6379/1');
    expect((fake.swarm.specs.get('shop-feature-a-worker') as { TaskTemplate: { ContainerSpec: { Env: string[] } } }).TaskTemplate.ContainerSpec.Env).toContain('REDIS_URL=redis://redis:6379/1');
    expect((fake.swarm.specs.get('shop-v1-worker') as { TaskTemplate: { ContainerSpec: { Env: string[] } } }).TaskTemplate.ContainerSpec.Env).toContain('REDIS_URL=redis://redis:6379');
    await branchDeploy('feature/b');
    expect(releaseEnv('feature-b')).toContain('REDIS_URL=redis://redis:6379/2');
    // a redeploy keeps its number
    await branchDeploy('feature/a');
    expect(await records()).toEqual(['feature-a=redis database 1', 'feature-b=redis database 2']);
    const before = fake.swarm.calls.length;
    await expect(branchDeploy('feature/c')).rejects.toMatchObject({ exitCode: 2, code: 'BRANCH_REDIS_EXHAUSTED', message: expect.stringContaining('feature-a (1), feature-b (2)') });
    expect(fake.swarm.calls.slice(before).filter((c) => !c.startsWith('await') && !c.startsWith('ensure-edge'))).toEqual([]);
    expect(fake.versions.map((v) => v.label).sort()).toEqual(['feature-a', 'feature-b', 'v1']);
  });

  it('a number holding keys no record accounts for is refused: nothing recorded, nothing flushed', async () => {
    fake.swarm.occupiedRedis.add('redis:1');
    await expect(branchDeploy('feature/a')).rejects.toMatchObject({ code: 'BRANCH_DATABASE_FAILED', message: expect.stringContaining('no depl record accounts for') });
    expect(await records()).toEqual([]);
    expect(fake.swarm.calls.some((c) => c.includes('-drop') || c.startsWith('remove-secret'))).toBe(false);
    expect(fake.versions).toEqual([]);
  });

  it('a release phase that fails empties the new branch\'s number again and frees it', async () => {
    fake.swarm.jobOutcome = { exitCode: 1, output: 'migration failed\n' };
    await expect(branchDeploy('feature/a')).rejects.toMatchObject({ code: 'RELEASE_FAILED' });
    expect(await records()).toEqual([]);
    expect(fake.swarm.databases.size).toBe(0);
  });

  // from the install record on: the steps before it (build, configs, secrets, accessories) are any install's, killed
  // after each in buildinst-fake and branch-database-fake; each round here is two buildinsts on a new fake cluster
  it('killed after any step from the install record on, the next buildinst finishes with the same one number', async () => {
    const steps = (await branchDeploy('feature/a')).plan.steps;
    expect(steps.map((s) => s.kind)).toContain('branch-redis');
    for (let step = steps.findIndex((s) => s.kind === 'write-install-intent'); ; step++) {
      await fake.close();
      fake = await startFakeCluster({ versions: [] });
      const killed = await branchDeploy('feature/a', step).then(() => false, (error: unknown) => {
        if (!(error instanceof Killed)) throw error;
        return true;
      });
      if (!killed) break;
      await branchDeploy('feature/a');
      expect(await records(), `killed after step ${step + 1}`).toEqual(['feature-a=redis database 1']);
      expect(releaseEnv('feature-a')).toContain('REDIS_URL=redis://redis:6379/1');
      expect(fake.versions.map((v) => v.label)).toEqual(['feature-a']);
    }
  }, 120_000);

  it('prune backs the keys up to .depl/backups, flushes the number and frees it for the next branch; killed after any step, the next prune finishes', async () => {
    await branchDeploy('feature/a');
    await branchDeploy('feature/b');
    for (let step = -1; ; step++) {
      await rm(backups, { recursive: true, force: true });
      const killed = await prune(['feature/b'], (index) => {
        if (index === step) throw new Killed(`after step ${index + 1}`);
      }).then(() => false, (error: unknown) => {
        if (!(error instanceof Killed)) throw error;
        return true;
      });
      if (step >= 0 && !killed) break;
      if (killed) await prune(['feature/b']);
      expect(await records(), `killed after step ${step + 1}`).toEqual(['feature-b=redis database 2']);
      expect([...fake.swarm.databases.keys()]).toEqual(['redis:2']);
      const files = (await readdir(backups)).filter((f) => f.endsWith('.redis'));
      expect(files.length, `killed after step ${step + 1}: a whole backup`).toBeGreaterThanOrEqual(1);
      expect(files[0]).toMatch(/^shop-redis-feature-a-\d{8}-\d{6}\.redis$/);
      expect(await readFile(path.join(backups, files[0]!), 'utf8')).toBe('-- dump of redis:1\n');
      // the freed number goes to the next branch (feature/a pushed again: the next round prunes it again)
      await branchDeploy('feature/a');
      expect(await records()).toEqual(['feature-a=redis database 1', 'feature-b=redis database 2']);
    }
  }, 120_000);
});
