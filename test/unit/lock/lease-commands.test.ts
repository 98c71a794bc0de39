import { describe, expect, it } from 'vitest';
import {
  acquireLeaseCommand, breakLeaseCommand, describeLeaseHolder, leaseDir, leaseStatusCommand, parseLeaseAnswer, releaseLeaseCommand, renewLeaseCommand,
} from '../../../src/plan/lock.js';
import { shellLine } from '../../../src/plan/shell.js';

const holder = { holder: 'ann@laptop', host: 'laptop', pid: 4242, command: "switch v2 --note 'it's fine'", since: '2026-11-22T10:00:00.000Z', token: '00ff00ff00ff00ff' };
const dir = leaseDir('/var/lib/depl', 'shop');

/** The lines as they cross SSH (Kamal-style: commands are data, asserted as strings). */
describe('cluster lease commands', () => {
  it('keeps the lease in <state>/<app>/lease/lock, changed only under flock on lease/lock.guard', () => {
    expect(dir).toBe('/var/lib/depl/shop/lease/lock');
    for (const argv of [acquireLeaseCommand(dir, holder, 60), renewLeaseCommand(dir, holder.token, 60), releaseLeaseCommand(dir, holder.token), breakLeaseCommand(dir)]) {
      expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
      expect(argv[2]).toContain('exec 9>>"$1.guard"; flock -w 30 9');
      expect(argv[4]).toBe(dir);
    }
  });

  it('acquire: mkdir, or take over an expired lease (or the named dead holder\'s), writing holder and expiry on the manager\'s clock', () => {
    const argv = acquireLeaseCommand(dir, holder, 60, 'aaaa', '/var/lib/depl/shop/layout', '/var/lib/depl/shop/lock');
    expect(argv.slice(3)).toEqual(['depl-lock', dir, JSON.stringify(holder), '60', 'aaaa', '/var/lib/depl/shop/layout', '/var/lib/depl/shop/lock']);
    // the app folder's state layout comes back in the same answer (src/plan/state-layout.ts)
    expect(argv[2]).toContain('echo "$status $((now + $3)) $now $fence $layout"');
    expect(argv[2]).toContain('if mkdir "$1" 2>/dev/null; then status=acquired');
    expect(argv[2]).toContain('if [ "$exp" -gt "$now" ] && { [ -z "$4" ] || ! grep -qF "\\"token\\":\\"$4\\"" "$1/holder.json" 2>/dev/null; }; then');
    expect(argv[2]).toContain('echo $((now + $3)) > "$1/expires.tmp" && mv -f "$1/expires.tmp" "$1/expires"');
    expect(acquireLeaseCommand(dir, holder, 60).slice(-3)).toEqual(['', '', '']);
    // the holder's JSON travels as one quoted argument, whatever the command line holds
    expect(shellLine(argv)).toContain(`'{"holder":"ann@laptop","host":"laptop","pid":4242,"command":"switch v2 --note '\\''it'\\''s fine'\\''"`);
  });

  it('renew and release touch only a lease holding our token', () => {
    expect(renewLeaseCommand(dir, holder.token, 90).slice(3)).toEqual(['depl-lock', dir, holder.token, '90']);
    expect(renewLeaseCommand(dir, holder.token, 90)[2]).toContain('if grep -qF "\\"token\\":\\"$2\\"" "$1/holder.json" 2>/dev/null; then');
    expect(releaseLeaseCommand(dir, holder.token)[2]).toContain('then rm -rf "$1"; echo released; else echo not-mine; fi');
    expect(breakLeaseCommand(dir)[2]).toContain('echo released; cat "$1/holder.json" 2>/dev/null || true; rm -rf "$1"');
    expect(leaseStatusCommand(dir, 60).slice(3)).toEqual(['depl-lock', dir, '', '60']);
  });

  it('reads the scripts\' answers', () => {
    expect(parseLeaseAnswer('acquired 1700000060 1700000000 7 2\n')).toEqual({ status: 'acquired', expiresAt: 1700000060, now: 1700000000, fence: 7, layout: 2 });
    // an app folder with no layout file: layout 0 (an earlier depl's)
    expect(parseLeaseAnswer('acquired 1700000060 1700000000 7 0\n')).toMatchObject({ layout: 0 });
    expect(parseLeaseAnswer(`held 1700000030 1700000000\n${JSON.stringify(holder)}\n`)).toEqual({ status: 'held', expiresAt: 1700000030, now: 1700000000, holder });
    expect(parseLeaseAnswer(`taken-over 1700000060 1700000000\n${JSON.stringify(holder)}\n`)).toMatchObject({ status: 'taken-over', previous: holder });
    expect(parseLeaseAnswer('held 1 0\n{"holder": "x@y", "pid": 1, "command": "switch v1", "time": "2026-11-20T10:00:00Z", "token": "aa"}')).toMatchObject({ holder: { host: 'y', since: '2026-11-20T10:00:00Z' } });
    expect(parseLeaseAnswer('held 1 0\n{"holder": "x@')).toMatchObject({ holder: { holder: 'unknown', pid: 0 } });
    expect(parseLeaseAnswer('free\n')).toEqual({ status: 'free', holder: null });
    expect(() => parseLeaseAnswer('sh: flock: not found')).toThrow(/unexpected answer from the lock script/);
  });

  it('describes a holder with its lease', () => {
    expect(describeLeaseHolder(holder, 40)).toBe("ann@laptop (pid 4242, `switch v2 --note 'it's fine'`, since 2026-11-22T10:00:00.000Z, lease expires in 40 s)");
    expect(describeLeaseHolder(holder, -5)).toContain('lease expired 5 s ago');
    expect(describeLeaseHolder(null)).toBe('an unknown holder');
  });
});
