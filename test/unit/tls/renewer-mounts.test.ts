import { describe, expect, it } from 'vitest';
import { leaseDir } from '../../../src/plan/lock.js';
import { edgeDir } from '../../../src/plan/edge-service.js';
import { ACME_ACCOUNT_FILE, engineGateDir, renewalRecordPath, renewerCodeDir, renewerFolders, renewerMounts, tlsStateDir } from '../../../src/plan/tls/renewal.js';

/** What the task sees at a path of the manager: the innermost bind mount over it decides. */
function access(hostPath: string): 'rw' | 'ro' | 'not mounted' {
  const over = renewerMounts('shop').filter((m) => m.Type === 'bind' && (hostPath === m.Source || hostPath.startsWith(`${m.Source}/`)));
  const inner = over.sort((a, b) => b.Source!.length - a.Source!.length)[0];
  return inner === undefined ? 'not mounted' : inner.ReadOnly === true ? 'ro' : 'rw';
}

describe('what the renewal task sees of the manager', () => {
  it('mounts the lock\'s folder, the TLS state and the edge\'s folder read-write, its engine gate and its code read-only, and not the app\'s folder', () => {
    expect(renewerMounts('shop')).toEqual([
      { Type: 'bind', Source: '/var/lib/depl/shop/lease', Target: '/var/lib/depl/shop/lease' },
      { Type: 'bind', Source: '/var/lib/depl/shop/tls', Target: '/var/lib/depl/shop/tls' },
      { Type: 'bind', Source: '/var/lib/depl/shop/edge', Target: '/var/lib/depl/shop/edge' },
      { Type: 'bind', Source: '/var/lib/depl/shop/edge-gate', Target: '/var/lib/depl/shop/edge-gate', ReadOnly: true },
      { Type: 'bind', Source: '/var/lib/depl/shop/renewer', Target: '/var/lib/depl/shop/renewer', ReadOnly: true },
      { Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: 16 * 1024 * 1024, Mode: 0o1777 } },
    ]);
    expect(renewerFolders('shop')).toEqual(['/var/lib/depl/shop/lease', '/var/lib/depl/shop/tls', '/var/lib/depl/shop/edge', '/var/lib/depl/shop/edge-gate', '/var/lib/depl/shop/renewer']);
  });

  it('can write everything it writes: the lease, its guard and fencing counter, the ACME account, its record, certificates and the edge\'s files', () => {
    const lease = leaseDir('/var/lib/depl', 'shop');
    for (const path of [
      `${lease}/holder.json`, `${lease}.guard`, `${lease}.fence`,
      `${tlsStateDir('shop')}/${ACME_ACCOUNT_FILE}`, renewalRecordPath('shop'),
      `${edgeDir('shop')}/tls/shop.example.org/privkey.pem`, `${edgeDir('shop')}/acme-challenge/token`, `${edgeDir('shop')}/nginx.conf`,
    ]) expect([path, access(path)]).toEqual([path, 'rw']);
    expect(access(`${engineGateDir('shop')}/engine.sock`)).toBe('ro');
    expect(access(`${renewerCodeDir('shop')}/renewer-abc.mjs`)).toBe('ro');
  });

  it('cannot reach the release state or anything else of the app\'s folder', () => {
    for (const path of [
      '/var/lib/depl/shop/release.json', '/var/lib/depl/shop/install-intent.json', '/var/lib/depl/shop/seeds/db.dump',
      '/var/lib/depl/shop/accessories/redis.restore.json', '/var/lib/depl/shop/autoscale/v7.json', '/var/lib/depl/shop/autoscale/gates/v7/engine.sock',
      // layout 1's lease and account, which an earlier renewal task used
      '/var/lib/depl/shop/lock/holder.json', '/var/lib/depl/shop/tls-account.json', '/var/lib/depl/other/release.json',
    ]) expect([path, access(path)]).toEqual([path, 'not mounted']);
  });
});
