import { describe, expect, it } from 'vitest';
import { replicasOf, seesHostPath } from '../../../src/plan/inspected-spec.js';

const withMounts = (mounts: unknown[], extra: Record<string, unknown> = {}) => ({ TaskTemplate: { ContainerSpec: { Mounts: mounts } }, ...extra });
const bind = (source: string, target: string) => ({ Type: 'bind', Source: source, Target: target });
const tmpfs = (target: string) => ({ Type: 'tmpfs', Target: target });
const account = '/var/lib/depl/shop/tls/account.json';

describe('what a service an earlier depl installed can read of the manager', () => {
  it('the Docker socket reads every file', () => {
    expect(seesHostPath(withMounts([bind('/var/run/docker.sock', '/var/run/docker.sock')]), account)).toBe(true);
  });

  it('a bind of the app\'s folder shows the account in tls/, wherever it is mounted', () => {
    expect(seesHostPath(withMounts([bind('/var/lib/depl/shop', '/run/depl/release')]), account)).toBe(true);
    expect(seesHostPath(withMounts([bind('/var/lib/depl/shop', '/var/lib/depl/shop')]), account)).toBe(true);
  });

  it('an empty tmpfs over tls/ hides it; /dev/null over the old file hides only that file', () => {
    expect(seesHostPath(withMounts([bind('/var/lib/depl/shop', '/run/depl/release'), tmpfs('/run/depl/release/tls')]), account)).toBe(false);
    const oldHiding = withMounts([bind('/var/lib/depl/shop', '/run/depl/release'), bind('/dev/null', '/run/depl/release/tls-account.json')]);
    expect(seesHostPath(oldHiding, '/var/lib/depl/shop/tls-account.json')).toBe(false);
    expect(seesHostPath(oldHiding, account)).toBe(true);
  });

  it('a second bind of the hidden folder shows it again; folders beside it and a similar name do not', () => {
    expect(seesHostPath(withMounts([bind('/var/lib/depl/shop', '/r'), tmpfs('/r/tls'), bind('/var/lib/depl/shop/tls', '/t')]), account)).toBe(true);
    expect(seesHostPath(withMounts([bind('/var/lib/depl/shop', '/r'), bind('/var/lib/depl/shop/edge', '/r/tls')]), account)).toBe(false);
    expect(seesHostPath(withMounts([bind('/var/lib/depl/shop/lease', '/var/lib/depl/shop/lease'), bind('/var/lib/depl/shop/edge', '/var/lib/depl/shop/edge')]), account)).toBe(false);
    expect(seesHostPath(withMounts([bind('/var/lib/depl/sho', '/x')]), account)).toBe(false);
  });

  it('replicas: the number a replicated spec asks for, none for another mode', () => {
    expect(replicasOf(withMounts([], { Mode: { Replicated: { Replicas: 0 } } }))).toBe(0);
    expect(replicasOf(withMounts([], { Mode: { Global: {} } }))).toBeUndefined();
  });
});
