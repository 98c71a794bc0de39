import { execa, type Result } from 'execa';
import { ensureDebianPackages } from '../../../src/apply/host/packages.js';
import type { Logger } from '../../../src/util/log.js';

/** The real python client from Debian, installed when missing (CI machines start without it). */
export async function ensureOpenStackClient(log: Logger): Promise<void> {
  await ensureDebianPackages(['python3-openstackclient', 'python3-heatclient'], log);
}

/**
 * The environment for a child that talks to the emulator: no proxy (the emulator is on loopback), no
 * OS_* left over from the caller's shell, and a HOME of our choosing so ~/.config/openstack is not read.
 */
export function isolatedEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (/^os_/i.test(key) || /_proxy$/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, HOME: home, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost', ...extra };
}

/** Runs `openstack ...`; never throws, so tests can assert on failures too. */
export async function openstack(args: string[], env: Record<string, string>, cwd?: string): Promise<Result> {
  return execa('openstack', args, { env, extendEnv: false, reject: false, cwd, timeout: 120_000 });
}
