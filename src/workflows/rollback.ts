import type { ClusterPort } from './cluster-port.js';
import { withRelease } from './release.js';
import { switchIn, type SwitchOptions, type SwitchResult } from './switch.js';

/** Back to the version that was live before the current one, with the same checks as a switch. */
export async function rollback(control: ClusterPort, options: SwitchOptions = {}): Promise<SwitchResult> {
  return withRelease(control, 'depl rollback', options, (session) => switchIn(session, control, { kind: 'rollback' }, options));
}
