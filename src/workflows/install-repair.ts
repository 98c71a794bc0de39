import { clearInstallIntent } from '../apply/install-intent.js';
import { readReleaseDocument } from '../apply/release-store.js';
import { planInstallRepair, type InstallIntent } from '../plan/install-intent.js';
import { stateOf } from '../plan/release-state.js';
import type { ClusterPort } from './cluster-port.js';
import type { ReleaseSession } from './release.js';

export type InstallRepairIo = Pick<ClusterPort, 'app' | 'stateRemote' | 'stateRoot' | 'log' | 'swarm' | 'installed'>;

/**
 * Repairs what an interrupted buildinst left (src/plan/install-intent.ts): the half-made version is removed, or,
 * for a branch redeploy, the branch's earlier deploy is put back. Runs under the lock, from every command that
 * opens the release state (src/workflows/release.ts) and from buildinst itself, so the version it names can be
 * installed again. With a session a removed version is taken off the edge first, in a recorded change, so the
 * edge never routes to a service that is gone; without one (an app with no edge) only the services go. The
 * intent is dropped last: a repair that is itself interrupted is done again by the next command. A swarm that
 * cannot put specs back (a command that reaches it over the docker CLI only) reports the redeploy and keeps the
 * intent for the next buildinst, which can: never removing the branch's earlier, working deploy.
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
  if (repair.action === 'restore' && io.swarm.restore === undefined) {
    io.log.warn(`an interrupted \`${intent.command}\` (${intent.by}, ${intent.at}) was redeploying version ${intent.version} and never finished; this command cannot put its earlier deploy back (no Engine API here), so its services stay as they are until the next \`depl buildinst\`, which does that first`);
    return;
  }
  io.log.warn(`repair: ${repair.why}`);
  if (repair.action === 'remove') {
    if (repair.fromEdge && session !== undefined) await session.change({ kind: 'remove', version: repair.version, note: 'interrupted install' });
    await io.swarm.remove(repair.services);
    // the services go before the stopped ones start: the volume is held by one task at a time
    if (repair.restart.length > 0) await io.swarm.scale(repair.restart);
  }
  if (repair.action === 'restore') {
    await io.swarm.restore!(repair.restore);
    await io.swarm.remove(repair.remove);
  }
  await clearInstallIntent(io.stateRemote, io.app, io.stateRoot);
}
