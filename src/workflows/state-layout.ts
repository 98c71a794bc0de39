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
 * killed, and the next command does what is left.
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
  if (answer.status !== 'prepared') {
    const who = answer.status === 'held' ? `is held by ${describeLeaseHolder(answer.holder, answer.expiresInSeconds)}` : 'could not be checked in time (its guard stayed busy)';
    throw new OperationError(
      `the cluster lock where an earlier depl keeps it (${port.stateRemote.name}:${root}/${port.app}/lock) ${who}: this depl moves it (state layout ${STATE_LAYOUT}) only when nobody holds it there`,
      'An earlier depl, or the renewal task it installed, is changing the cluster: run the command again when it is done (a lease whose holder died runs out within a minute). Every operator should use this depl from now on: an earlier one finds the lock held for good.',
      'LOCKED',
    );
  }
  // a new cluster's first command only lays the folders out: nothing of an earlier depl's moved, nothing to say
  if (answer.moved) port.log.info(`the app's folder on ${port.stateRemote.name} moves to state layout ${STATE_LAYOUT}: the lock is now lease/lock, the ACME account tls/account.json`);
  for (const upgrade of plan.upgrades) {
    port.log.warn(`repair: ${upgrade.why}`);
    if (port.upgrades === undefined) break;
    if (upgrade.kind === 'renewer') {
      await port.upgrades.renewer({ settings: upgrade.settings, image: upgrade.image, ...(upgrade.dnsSecret !== undefined ? { dnsSecret: upgrade.dnsSecret } : {}) });
    } else {
      const image = await port.upgrades.controllerImage(upgrade.version);
      // the gate first: the controller's first request goes through it
      await port.upgrades.put(withImage(upgrade.gate, image));
      await port.upgrades.put(withImage(upgrade.controller, image));
    }
  }
  for (const report of plan.reports) port.log.warn(`${report.why}: this depl cannot install it again safely, so it is left as it is. ${report.hint}`);
  // the layout is recorded only once every service is as this depl plans it: until then each command looks again
  if (plan.finish !== null && port.upgrades !== undefined) await fenced.shell(shellLine(plan.finish));
  return plan;
}
