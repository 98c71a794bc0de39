import { acquireLock } from '../../src/apply/lock.js';
import { parseConfig, type LoadedConfig } from '../../src/config/load.js';
import { appNetworkName } from '../../src/plan/names.js';
import { silentLogger } from '../../src/util/log.js';
import { install, type InstallRequest } from '../../src/workflows/buildinst.js';
import type { ClusterPort, InstallTarget } from '../../src/workflows/cluster-port.js';
import { Killed, type FakeCluster } from './fake-cluster.js';

type BuildinstOptions = { branch?: string; secrets?: InstallRequest['secrets']; seedFiles?: InstallRequest['seedFiles'] };

/**
 * buildinst's applier on the fake cluster as a process runs it, for one depl.yaml: `fake` is read at each call
 * (tests make a new fake cluster per case).
 */
export function fakeBuildinst(fake: () => FakeCluster, yaml: string) {
  const loaded = (): LoadedConfig => ({ config: parseConfig(yaml), root: '/nonexistent', file: 'depl.yaml' } as unknown as LoadedConfig);
  const request = (version: string, options: BuildinstOptions = {}): InstallRequest => ({
    config: loaded().config, version, command: options.branch !== undefined ? `depl buildinst --branch ${options.branch}` : `depl buildinst --version ${version}`,
    ...(options.branch !== undefined ? { branch: options.branch } : {}),
    secrets: options.secrets ?? [], files: [], ...(options.seedFiles !== undefined ? { seedFiles: options.seedFiles } : {}), cluster: { network: appNetworkName(fake().app), nodes: ['m1', 'w1'], manager: 'm1' },
  });
  const port = (control: ClusterPort = fake().freshControl()) => control as ClusterPort & { install: InstallTarget };
  /** The lock, then install(); `killAfter`: the process dies after that step (index from 0). */
  async function buildinst(version: string, killAfter?: number, options: BuildinstOptions = {}) {
    const control = port();
    const lock = await acquireLock(control.stateRemote, fake().app, { command: `depl buildinst --version ${version}`, root: control.stateRoot!, log: silentLogger });
    try {
      return await install(control, lock, request(version, options), { tasksTimeoutMs: 1_000, healthTimeoutMs: 1_000 }, {}, (index) => {
        if (index === killAfter) throw new Killed(`after step ${index + 1}`);
      });
    } finally {
      // the fake's lease is released here so the next case's command need not wait for it to run out
      await lock.release();
    }
  }
  return { loaded, request, port, buildinst };
}
