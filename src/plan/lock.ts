import { parseFileTexts, PRINT_FILES } from './file-texts.js';
import type { Argv } from './shell.js';

/**
 * The cluster lock as data: the shell lines that acquire, renew, release and read the lease on the manager.
 * The lease is a directory `<state>/<app>/lease/lock` holding `holder.json` (who) and `expires` (epoch seconds on
 * the manager's clock, so operators' clocks never matter). Every change happens under `flock` on
 * `<state>/<app>/lease/lock.guard`, so "is it expired? then it is mine" is one atomic step even when two runs
 * race to take over the same dead holder's lease. All three live in the folder `lease/` of their own, so the
 * renewal task, which takes the lock, mounts that folder and not the app's (src/plan/tls/renewal.ts); a
 * cluster where the lease was still `<state>/<app>/lock` is moved by src/plan/state-layout.ts.
 *
 * Fencing: every acquisition takes the next number of a counter beside the lease (`<state>/<app>/lease/lock.fence`,
 * which outlives releases) and writes it into the lease (`lock/fence`). A write that depends on holding the
 * lock runs through `fencedWriteCommand`: under the same guard, it checks that the lease still carries this
 * run's number and has not expired, and only then writes. A run that stalled past its lease (a suspended
 * laptop, a long GC, a partitioned network) and was taken over therefore writes nothing, even though it does
 * not know yet that it lost the lease.
 */
export interface LeaseHolder {
  /** `user@host` of the operator's machine. */
  holder: string;
  host: string;
  pid: number;
  /** The depl command line holding it: `switch v2`. */
  command: string;
  /** ISO time it was acquired. */
  since: string;
  /** Random per acquisition: only the run that holds this token renews or releases the lease. */
  token: string;
}

/** The folder of the lease, its guard and its fencing counter: everything a holder of the lock writes to take it. */
export function leaseFolder(root: string, app: string): string {
  return `${root}/${app}/lease`;
}

export function leaseDir(root: string, app: string): string {
  return `${leaseFolder(root, app)}/lock`;
}

/** The guard is held for the few milliseconds a script runs, never while depl works. */
const GUARD = 'exec 9>>"$1.guard"; flock -w 30 9 || { echo "guard-timeout"; exit 0; }';
/** A lease without an `expires` file (written by a depl from before leases) expires one TTL after it was made. */
const EXPIRES = 'exp=$(cat "$1/expires" 2>/dev/null || true); case "$exp" in ""|*[!0-9]*) exp=$(( $(stat -c %Y "$1") + $3 ));; esac';
const MINE = 'grep -qF "\\"token\\":\\"$2\\"" "$1/holder.json" 2>/dev/null';
const WRITE = 'printf "%s\\n" "$HOLDER" > "$1/holder.json.tmp" && mv -f "$1/holder.json.tmp" "$1/holder.json" && echo $((now + $3)) > "$1/expires.tmp" && mv -f "$1/expires.tmp" "$1/expires"';
/** The next fencing number: one more than any lease of this app ever had (a counter that is not a number restarts at 1). */
const NEXT_FENCE = 'fence=$(cat "$1.fence" 2>/dev/null || true); case "$fence" in ""|*[!0-9]*) fence=0;; esac; fence=$((fence + 1)); echo "$fence" > "$1.fence.tmp" && mv -f "$1.fence.tmp" "$1.fence" && echo "$fence" > "$1/fence"';

/**
 * Takes the lease if it is free or expired, or when it is held under `replaceToken` (a holder the caller
 * saw die on its own machine). Prints `acquired|taken-over <expires> <now> <fence> <layout>` (taken-over: the
 * previous holder's JSON follows), or `held <expires> <now>` and the holder's JSON. `<layout>` is the number in
 * the file `layoutFile` (0 when there is none, src/plan/state-layout.ts), read in the same round trip: every
 * command checks it once it holds the lock. A layout that a file says but whose fence at `earlierLock` (the lock's
 * place before layout 2) is not a plain file any more reads as 1: the fence is put back before anything else.
 * `reads`: files printed once the lease is held, after a NUL (src/plan/file-texts.ts; `leaseReads`): what the
 * command reads first (the release state) costs no round trip of its own.
 */
export function acquireLeaseCommand(
  dir: string,
  holder: LeaseHolder,
  ttlSeconds: number,
  replaceToken = '',
  layoutFile = '',
  earlierLock = '',
  reads: readonly string[] = [],
): Argv {
  const script = [
    'set -eu',
    'mkdir -p "${1%/*}"',
    GUARD,
    'now=$(date +%s)',
    'if mkdir "$1" 2>/dev/null; then status=acquired; old=""',
    'else',
    `  ${EXPIRES}`,
    '  if [ "$exp" -gt "$now" ] && { [ -z "$4" ] || ! grep -qF "\\"token\\":\\"$4\\"" "$1/holder.json" 2>/dev/null; }; then',
    '    echo "held $exp $now"; cat "$1/holder.json" 2>/dev/null || true; exit 0',
    '  fi',
    '  status=taken-over; old=$(cat "$1/holder.json" 2>/dev/null || true)',
    'fi',
    'HOLDER=$2',
    WRITE,
    NEXT_FENCE,
    'layout=; [ -z "$5" ] || read -r layout < "$5" 2>/dev/null || true; case "$layout" in ""|*[!0-9]*) layout=0;; esac',
    '[ "$layout" -eq 0 ] || [ -z "$6" ] || { [ -f "$6" ] && [ ! -L "$6" ]; } || layout=1',
    'echo "$status $((now + $3)) $now $fence $layout"',
    '[ -z "$old" ] || printf "%s\\n" "$old"',
    'shift 6',
    `[ "$#" -eq 0 ] || { printf "\\0"; ${PRINT_FILES}; }`,
  ].join('\n');
  return ['sh', '-c', script, 'depl-lock', dir, JSON.stringify(holder), String(ttlSeconds), replaceToken, layoutFile, earlierLock, ...reads];
}

/** The texts of the files acquireLeaseCommand read once it held the lease, or null when it printed none. */
export function leaseReads(stdout: string, count: number): Array<string | null> | null {
  const start = stdout.indexOf('\0');
  return count === 0 || start < 0 ? null : parseFileTexts(stdout.slice(start + 1), count);
}

/** Pushes the expiry out if the lease is still ours: `renewed <expires> <now>`, else `lost` and who has it. */
export function renewLeaseCommand(dir: string, token: string, ttlSeconds: number): Argv {
  const script = [
    'set -eu',
    GUARD,
    'now=$(date +%s)',
    `if ${MINE}; then`,
    '  echo $((now + $3)) > "$1/expires.tmp" && mv -f "$1/expires.tmp" "$1/expires"; echo "renewed $((now + $3)) $now"',
    'else echo lost; cat "$1/holder.json" 2>/dev/null || true; fi',
  ].join('\n');
  return ['sh', '-c', script, 'depl-lock', dir, token, String(ttlSeconds)];
}

/** Removes the lease only if it is ours (`released`); someone who took it over keeps it (`not-mine`). */
export function releaseLeaseCommand(dir: string, token: string): Argv {
  const script = ['set -eu', '[ -d "$1" ] || { echo free; exit 0; }', GUARD, `if ${MINE}; then rm -rf "$1"; echo released; else echo not-mine; fi`].join('\n');
  return ['sh', '-c', script, 'depl-lock', dir, token];
}

/** `depl lock release`: removes the lease whoever holds it; prints `released` and the holder, or `free`. */
export function breakLeaseCommand(dir: string): Argv {
  const script = ['set -eu', '[ -d "$1" ] || { echo free; exit 0; }', GUARD, 'echo released; cat "$1/holder.json" 2>/dev/null || true; rm -rf "$1"'].join('\n');
  return ['sh', '-c', script, 'depl-lock', dir];
}

/** `free`, or `held <expires> <now>` and the holder's JSON. `ttlSeconds` dates a lease from before leases. */
export function leaseStatusCommand(dir: string, ttlSeconds: number): Argv {
  const script = ['set -eu', '[ -d "$1" ] || { echo free; exit 0; }', 'now=$(date +%s)', EXPIRES, 'echo "held $exp $now"', 'cat "$1/holder.json" 2>/dev/null || true'].join('\n');
  return ['sh', '-c', script, 'depl-lock', dir, '', String(ttlSeconds)];
}

/** Exit status of a fenced write the lease refused (the write did not run). */
export const FENCED_EXIT = 75;

/**
 * Runs the shell `line` on the manager only if the lease still carries `fence` and has not expired, checked
 * under the lease's guard, which stays held while the line runs (keep it a short file write). The line's
 * stdin is its own. Refused: exit FENCED_EXIT, and stderr says why (parseFenceRefusal).
 */
export function fencedWriteCommand(dir: string, fence: number, ttlSeconds: number, line: string): Argv {
  const script = [
    'exec 9>>"$1.guard"; flock -w 30 9 || { echo "depl-fenced guard-timeout" >&2; exit 75; }',
    '[ -d "$1" ] || { echo "depl-fenced free" >&2; exit 75; }',
    // shell builtins where they do: this runs before every write a release makes
    'cur=; read -r cur < "$1/fence" 2>/dev/null || true',
    'if [ "$cur" != "$2" ]; then echo "depl-fenced taken-over" >&2; cat "$1/holder.json" >&2 2>/dev/null; exit 75; fi',
    'now=$(date +%s); exp=; read -r exp < "$1/expires" 2>/dev/null || true; case "$exp" in ""|*[!0-9]*) exp=0;; esac',
    'if [ "$exp" -le "$now" ]; then echo "depl-fenced expired $((now - exp))" >&2; cat "$1/holder.json" >&2 2>/dev/null; exit 75; fi',
    'eval "$4"',
  ].join('\n');
  return ['sh', '-c', script, 'depl-fence', dir, String(fence), String(ttlSeconds), line];
}

export interface FenceRefusal {
  /** free: nobody holds the lease (`depl lock release`); taken-over: another run holds it; expired: ours, run out. */
  reason: 'free' | 'taken-over' | 'expired' | 'guard-timeout';
  /** Who holds the lease now (taken-over), or our own expired one; null when free or unreadable. */
  holder: LeaseHolder | null;
  /** expired: how many seconds ago. */
  expiredSeconds?: number;
}

/** The refusal a fenced write printed, or null when the lease let it run. */
export function parseFenceRefusal(code: number, stderr: string): FenceRefusal | null {
  if (code !== FENCED_EXIT) return null;
  const [first = '', ...rest] = stderr.split('\n');
  const match = /^depl-fenced (free|taken-over|expired|guard-timeout)(?: (\d+))?$/.exec(first.trim());
  if (match === null) return null;
  const reason = match[1] as FenceRefusal['reason'];
  return { reason, holder: parseHolder(rest.join('\n')), ...(match[2] !== undefined ? { expiredSeconds: Number(match[2]) } : {}) };
}

/** Why a write was refused, naming who holds the lock now. */
export function describeFenceRefusal(refusal: FenceRefusal): string {
  switch (refusal.reason) {
    case 'taken-over':
      return `its lease was taken over by ${describeLeaseHolder(refusal.holder)}`;
    case 'expired':
      return `its lease expired ${refusal.expiredSeconds ?? 0} s ago before it was renewed`;
    case 'free':
      return 'the lock was released under it (`depl lock release`?) and nobody holds it now';
    case 'guard-timeout':
      return 'the lease could not be checked in time (its guard stayed busy)';
  }
}

export type LeaseAnswer =
  | { status: 'acquired'; expiresAt: number; now: number; fence: number; layout: number }
  | { status: 'renewed'; expiresAt: number; now: number }
  | { status: 'taken-over'; expiresAt: number; now: number; previous: LeaseHolder | null; fence: number; layout: number }
  | { status: 'held'; expiresAt: number; now: number; holder: LeaseHolder | null }
  | { status: 'lost'; holder: LeaseHolder | null }
  | { status: 'released' | 'not-mine' | 'free' | 'guard-timeout'; holder: LeaseHolder | null };

/** Reads what one of the scripts above printed. Times are epoch seconds on the manager. */
export function parseLeaseAnswer(stdout: string): LeaseAnswer {
  // files the acquisition read follow a NUL (leaseReads)
  const nul = stdout.indexOf('\0');
  const [first = '', ...rest] = (nul < 0 ? stdout : stdout.slice(0, nul)).split('\n');
  const [status = '', a, b, c, d] = first.trim().split(' ');
  const holder = parseHolder(rest.join('\n'));
  switch (status) {
    case 'acquired':
      return { status, expiresAt: Number(a), now: Number(b), fence: Number(c), layout: Number(d ?? 0) || 0 };
    case 'renewed':
      return { status, expiresAt: Number(a), now: Number(b) };
    case 'taken-over':
      return { status, expiresAt: Number(a), now: Number(b), previous: holder, fence: Number(c), layout: Number(d ?? 0) || 0 };
    case 'held':
      return { status, expiresAt: Number(a), now: Number(b), holder };
    case 'lost':
    case 'released':
    case 'not-mine':
    case 'free':
    case 'guard-timeout':
      return { status, holder };
    default:
      throw new Error(`unexpected answer from the lock script: ${stdout.slice(0, 200)}`);
  }
}

/** A holder file that is missing, half-written or foreign reads as an unknown holder. */
function parseHolder(text: string): LeaseHolder | null {
  const trimmed = text.trim();
  if (trimmed.length === 0) return null;
  try {
    const value = JSON.parse(trimmed) as Partial<LeaseHolder> & { time?: string };
    return {
      holder: String(value.holder ?? 'unknown'),
      host: String(value.host ?? String(value.holder ?? '').split('@')[1] ?? 'unknown'),
      pid: Number(value.pid ?? 0),
      command: String(value.command ?? 'unknown'),
      since: String(value.since ?? value.time ?? 'unknown'),
      token: String(value.token ?? ''),
    };
  } catch {
    return { holder: 'unknown', host: 'unknown', pid: 0, command: 'unknown', since: 'unknown', token: '' };
  }
}

/** `me@laptop (pid 4242, `switch v2`, since 2026-11-22T10:00:00Z, lease expires in 40 s)` */
export function describeLeaseHolder(holder: LeaseHolder | null, expiresInSeconds?: number): string {
  if (holder === null) return 'an unknown holder';
  const lease = expiresInSeconds === undefined ? '' : expiresInSeconds > 0 ? `, lease expires in ${expiresInSeconds} s` : `, lease expired ${-expiresInSeconds} s ago`;
  return `${holder.holder} (pid ${holder.pid}, \`${holder.command}\`, since ${holder.since}${lease})`;
}
