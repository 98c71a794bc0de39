import { describe, expect, it } from 'vitest';
import { dpkgWasInterrupted, FINISH_INTERRUPTED_DPKG } from '../../../src/plan/apt-recovery.js';

describe('an apt install after an interrupted dpkg run', () => {
  it('is recognised from apt-get\'s own refusal, and finished with dpkg --configure -a', () => {
    // apt-get 2.6 (Debian 12), as printed on this project's machine after a test run was killed mid-install
    const refusal = 'E: dpkg was interrupted, you must manually run \'dpkg --configure -a\' to correct the problem. ';
    expect(dpkgWasInterrupted(refusal)).toBe(true);
    expect(FINISH_INTERRUPTED_DPKG).toEqual(['dpkg', '--configure', '-a']);
  });

  it('is not read into other failures: a missing package, a held lock, a failed download', () => {
    for (const other of [
      'E: Unable to locate package no-such-package',
      'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1234 (apt-get)',
      'E: Failed to fetch http://deb.debian.org/debian/pool/main/d/docker.io/docker.io_20.10.24.deb  Connection refused',
    ]) expect(dpkgWasInterrupted(other), other).toBe(false);
  });
});
