import { UserError } from '../errors.js';
import type { EdgeControl } from './edge-control.js';
import { switchTo, type SwitchResult } from './switch.js';

/** Back to the version that was live before the current one, with the same checks as a switch. */
export async function rollback(control: EdgeControl): Promise<SwitchResult> {
  return switchTo(control, (state) => {
    if (state.previous === null) {
      throw new UserError('there is no previous live version to roll back to', 'Use `depl switch <version>` to choose one.', 'NO_PREVIOUS');
    }
    return state.previous;
  }, 'rollback');
}
