import { clearInstallIntent } from '../apply/install-intent.js';
import { readReleaseDocument } from '../apply/release-store.js';
import { planInstallRepair, type InstallIntent } from '../plan/install-intent.js';
import { stateOf } from '../plan/release-state.js';
import type { EdgeControl } from './edge-control.js';
import type { ReleaseSession } from './release.js';

export type InstallRepairIo = Pick<EdgeControl, 'app' | 'stateRemote' | 'stateRoot' | 'log' | 'swarm' | 'installed'>;

/**
 * Removes the version an interrupted buildinst left half-made (src/plan/install-intent.ts). Runs under the lock,
 * from every command that opens the release state (src/workflows/release.ts) and from buildinst itself, so the
 * version it names can be installed again. With a session the version is taken off the edge first, in a recorded
 * change, so the edge never routes to a service that is gone; without one (an app with no edge) only the
 * services go. The intent is dropped last: a repair that is itself interrupted is done again by the next command.
 */
export async function repairInterruptedInstall(io: InstallRepairIo, intent: InstallIntent, session?: ReleaseSession): Promise<void> {
  if (io.swarm === undefined) {
    io.log.warn(`an interrupted \`${intent.command}\` left version ${intent.version} half-installed, and this edge has no swarm to remove it from`);
    return;
  }
  const [installed, state] = session !== undefined
    ? [session.installed, session.state]
    : await Promise.all([io.installed(), readReleaseDocument(io.stateRemote, io.app, io.stateRoot).then(stateOf)]);
  const repair = planInstallRepair(intent, installed, state);
  io.log.warn(`repair: ${repair.why}`);
  if (repair.action === 'remove') {
    if (repair.fromEdge && session !== undefined) await session.change({ kind: 'remove', version: repair.version, note: 'interrupted install' });
    await io.swarm.remove(repair.services);
  }
  await clearInstallIntent(io.stateRemote, io.app, io.stateRoot);
}
