import type { HeldLock } from '../apply/lock.js';
import { DEFAULT_STATE_ROOT } from '../apply/release-store.js';
import { OperationError } from '../errors.js';
import { describeLeaseHolder } from '../plan/lock.js';
import type { ServiceSpec } from '../plan/services.js';
import { shellLine } from '../plan/shell.js';
import { layoutIsCurrent, parsePrepareAnswer, planStateLayout, STATE_LAYOUT, type LayoutMigration } from '../plan/state-layout.js';
import type { ClusterPort } from './cluster-port.js';

export type LayoutPort = Pick<ClusterPort, 'stateRemote' | 'app' | 'stateRoot' | 'log' | 'upgrades' | 'now'>;

const withImage = (spec: ServiceSpec, image: string): ServiceSpec => ({ ...spec, TaskTemplate: { ...spec.TaskTemplate, ContainerSpec: { ...spec.TaskTemplate.ContainerSpec, Image: image } } });

/**
 * Right after the lock is taken: an app folder an earlier depl left in an earlier layout is moved to this depl's
 * (src/plan/state-layout.ts), before anything reads it. The lock's acquisition read the layout file in its own
 * round trip, so a current folder costs nothing more. Every write goes through the lock's fence; each step may be
 * killed, and the next command does what is left. Without the port's `upgrades` (the services are not known)
 * only the earlier lock is fenced off: nothing secret moves while a service an earlier depl started may see it.
 */
export async function ensureStateLayout(port: LayoutPort, lock: Pick<HeldLock, 'fenced' | 'stateLayout'>): Promise<LayoutMigration | null> {
  const root = port.stateRoot ?? DEFAULT_STATE_ROOT;
  const layout = lock.stateLayout;
  if (layoutIsCurrent(layout)) return null;
  const services = port.upgrades !== undefined ? await port.upgrades.specs() : [];
  const plan = planStateLayout({ root, app: port.app, layout, services, at: (port.now?.() ?? new Date()).toISOString() });
  if (plan === null) return null;
  const fenced = lock.fenced(port.stateRemote);
  const answer = parsePrepareAnswer((await fenced.shell(shellLine(plan.prepare))).stdout);
  const where = `${port.stateRemote.name}:${root}/${port.app}/lock`;
  if (answer.status !== 'prepared') {
    const who = answer.status === 'held' ? `is held by ${describeLeaseHolder(answer.holder, answer.expiresInSeconds)}` : 'could not be checked in time (its guard stayed busy)';
    if (answer.status === 'held' && answer.reopened) {
      throw new OperationError(
        `a depl from before state layout ${STATE_LAYOUT} took the cluster lock where it used to keep it (${where}), which this cluster had moved from: it ${who}`,
        'Someone ran a depl from before this one on this cluster after a `depl lock release` of that depl removed the old lock\'s fence: it changes the cluster without this depl\'s lock. Let it finish (or its lease run out), make every operator use this depl, and run the command again: it fences the old lock off for good.',
        'LOCKED',
      );
    }
    throw new OperationError(
      `the cluster lock where an earlier depl keeps it (${where}) ${who}: this depl moves it (state layout ${STATE_LAYOUT}) only when nobody holds it there`,
      'An earlier depl, or the renewal task it installed, is changing the cluster: run the command again when it is done (a lease whose holder died runs out within a minute). Every operator should use this depl from now on: an earlier one finds the lock held for good.',
      'LOCKED',
    );
  }
  // a new cluster's first command only lays the folders out: nothing of an earlier depl's moved, nothing to say
  if (answer.found === 'earlier') port.log.info(`the app's folder on ${port.stateRemote.name} moves to state layout ${STATE_LAYOUT}: the lock is now lease/lock, the ACME account tls/account.json`);
  if (answer.found === 'reopened') {
    port.log.warn(`the fence at ${where}, which keeps depl versions from before state layout ${STATE_LAYOUT} off this cluster, had been removed (by such a depl's \`depl lock release\`?): it is put back. A depl from before may have changed the cluster without this depl's lock in the meantime: check \`depl status\`, and make every operator use this depl.`);
  }
  if (port.upgrades === undefined) return plan;
  // nothing an earlier depl started may read the account where it goes: those that could are stopped first
  for (const service of plan.stops) {
    port.log.warn(`stopping ${service}, which an earlier depl installed with more than it needs, before the ACME account moves into tls/`);
    await port.upgrades.stop(service);
  }
  await fenced.shell(shellLine(plan.move));
  for (const upgrade of plan.upgrades) {
    port.log.warn(`repair: ${upgrade.why}`);
    if (upgrade.kind === 'renewer') {
      await port.upgrades.renewer({ settings: upgrade.settings, image: upgrade.image, ...(upgrade.dnsSecret !== undefined ? { dnsSecret: upgrade.dnsSecret } : {}) });
    } else {
      const image = await port.upgrades.controllerImage(upgrade.version);
      // the gate first: the controller's first request goes through it
      await port.upgrades.put(withImage(upgrade.gate, image));
      await port.upgrades.put(withImage(upgrade.controller, image));
    }
  }
  for (const report of plan.reports) {
    const kept = plan.keptStopped.includes(report.service) ? 'stopped (it could read the ACME account where it is now)' : 'as it is';
    port.log.warn(`${report.why}: this depl cannot install it again safely, so it is left ${kept}. ${report.hint}`);
  }
  // the layout is recorded only once every service is as this depl plans it: until then each command looks again
  if (plan.finish !== null) await fenced.shell(shellLine(plan.finish));
  return plan;
}
