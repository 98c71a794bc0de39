import { execa } from 'execa';
import { OperationError } from '../../errors.js';
import { dpkgWasInterrupted, FINISH_INTERRUPTED_DPKG } from '../../plan/apt-recovery.js';
import type { Logger } from '../../util/log.js';

let aptUpdated = false;

/** One apt at a time among depl's processes (see ensureDebianPackages). */
const APT_LOCK = '/run/lock/depl-apt.lock';

/** Debian packages the operator's own machine needs (docker.io, debootstrap, ...), installed when missing. */
export async function ensureDebianPackages(packages: string[], log: Logger): Promise<void> {
  const missing: string[] = [];
  for (const name of packages) {
    const status = await execa('dpkg-query', ['-W', '-f=${Status}', name], { reject: false });
    if (!String(status.stdout).includes('install ok installed')) missing.push(name);
  }
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new OperationError(
      `missing packages on this machine: ${missing.join(', ')}`,
      `Install them as root: apt-get install -y ${missing.join(' ')}`,
      'HOST_PACKAGES_MISSING',
    );
  }
  const hasApt = await execa('sh', ['-c', 'command -v apt-get'], { reject: false });
  if (hasApt.exitCode !== 0) {
    throw new OperationError(`missing ${missing.join(', ')} and this is not a Debian-like system`, `Install the equivalent of: ${missing.join(' ')}`, 'HOST_PACKAGES_MISSING');
  }
  log.step(`installing ${missing.join(', ')} with apt-get (once; takes a minute)`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  // Another apt (unattended-upgrades on a fresh VM, or a second depl or test process installing its own
  // packages) holds dpkg's lock: wait for it instead of failing. flock serialises depl's own runs, update
  // included (its list lock has no wait option); DPkg::Lock::Timeout waits for anyone else's.
  const underAptLock = (argv: readonly string[]) => execa('flock', ['-w', '900', APT_LOCK, ...argv], { env, reject: false, all: true });
  const apt = (args: string[]) => underAptLock(['apt-get', '-o', 'DPkg::Lock::Timeout=600', ...args]);
  if (!aptUpdated) {
    const update = await apt(['update', '-qq']);
    if (update.exitCode !== 0) throw new OperationError(`apt-get update failed:\n${String(update.all).split('\n').slice(-10).join('\n')}`, undefined, 'HOST_PACKAGES_FAILED');
    aptUpdated = true;
  }
  const install = () => apt(['install', '-y', '-qq', '--no-install-recommends', ...missing]);
  let result = await install();
  if (result.exitCode !== 0 && dpkgWasInterrupted(String(result.all))) {
    log.warn(`repair: an earlier dpkg run on this machine was interrupted; finishing it (${FINISH_INTERRUPTED_DPKG.join(' ')}) before installing ${missing.join(', ')}`);
    const finished = await underAptLock(FINISH_INTERRUPTED_DPKG);
    if (finished.exitCode !== 0) {
      throw new OperationError(
        `an earlier dpkg run on this machine was interrupted, and finishing it failed:\n${String(finished.all).split('\n').slice(-10).join('\n')}`,
        `Run \`${FINISH_INTERRUPTED_DPKG.join(' ')}\` as root and fix what it reports, then run depl again.`,
        'HOST_PACKAGES_FAILED',
      );
    }
    result = await install();
  }
  if (result.exitCode !== 0) {
    throw new OperationError(`apt-get install ${missing.join(' ')} failed:\n${String(result.all).split('\n').slice(-10).join('\n')}`, undefined, 'HOST_PACKAGES_FAILED');
  }
}
