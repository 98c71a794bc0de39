import type { Argv } from './shell.js';

/**
 * apt-get refuses every install after a dpkg run was cut short (Ctrl-C or a killed depl during its own install of
 * docker.io, say) until someone finishes it: "E: dpkg was interrupted, you must manually run 'dpkg --configure -a'
 * to correct the problem." depl's next run sees that answer and finishes the interrupted run itself, once, as the
 * message asks, instead of failing on every command until an operator does.
 */
export function dpkgWasInterrupted(aptOutput: string): boolean {
  return /dpkg was interrupted, you must manually run '?dpkg --configure -a'?/.test(aptOutput);
}

/** What finishes the interrupted run: configure every package left unpacked (no download, no new package). */
export const FINISH_INTERRUPTED_DPKG: Argv = ['dpkg', '--configure', '-a'];
