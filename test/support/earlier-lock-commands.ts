/**
 * The lock commands of depl versions from before state layout 2, as data: copied as they were in src/plan/lock.ts
 * and src/apply/lock.ts at f00f0d4^ (leases with fencing numbers; the lease-era scripts before d5ebe44 differ only
 * by the fence counter) and at 7df2f2d^ (a bare `mkdir` lock), so that tests can run exactly what an earlier depl
 * would run against what a current one leaves at `<app>/lock`. Never change them to follow the current code.
 */
type Argv = string[];

const GUARD = 'exec 9>>"$1.guard"; flock -w 30 9 || { echo "guard-timeout"; exit 0; }';
const EXPIRES = 'exp=$(cat "$1/expires" 2>/dev/null || true); case "$exp" in ""|*[!0-9]*) exp=$(( $(stat -c %Y "$1") + $3 ));; esac';
const MINE = 'grep -qF "\\"token\\":\\"$2\\"" "$1/holder.json" 2>/dev/null';
const WRITE = 'printf "%s\\n" "$HOLDER" > "$1/holder.json.tmp" && mv -f "$1/holder.json.tmp" "$1/holder.json" && echo $((now + $3)) > "$1/expires.tmp" && mv -f "$1/expires.tmp" "$1/expires"';
const NEXT_FENCE = 'fence=$(cat "$1.fence" 2>/dev/null || true); case "$fence" in ""|*[!0-9]*) fence=0;; esac; fence=$((fence + 1)); echo "$fence" > "$1.fence.tmp" && mv -f "$1.fence.tmp" "$1.fence" && echo "$fence" > "$1/fence"';

/** The lease era's acquire (every locked command, and the renewal task it installed). */
export function earlierAcquire(dir: string, holder: object, ttlSeconds: number, replaceToken = ''): Argv {
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
    'echo "$status $((now + $3)) $now $fence"',
    '[ -z "$old" ] || printf "%s\\n" "$old"',
  ].join('\n');
  return ['sh', '-c', script, 'depl-lock', dir, JSON.stringify(holder), String(ttlSeconds), replaceToken];
}

/** The lease era's release at the end of a command. */
export function earlierRelease(dir: string, token: string): Argv {
  const script = ['set -eu', '[ -d "$1" ] || { echo free; exit 0; }', GUARD, `if ${MINE}; then rm -rf "$1"; echo released; else echo not-mine; fi`].join('\n');
  return ['sh', '-c', script, 'depl-lock', dir, token];
}

/** The lease era's `depl lock release`: removes the lease whoever holds it. */
export function earlierBreak(dir: string): Argv {
  const script = ['set -eu', '[ -d "$1" ] || { echo free; exit 0; }', GUARD, 'echo released; cat "$1/holder.json" 2>/dev/null || true; rm -rf "$1"'].join('\n');
  return ['sh', '-c', script, 'depl-lock', dir];
}

/** The lease era's `depl lock status`. */
export function earlierStatus(dir: string, ttlSeconds: number): Argv {
  const script = ['set -eu', '[ -d "$1" ] || { echo free; exit 0; }', 'now=$(date +%s)', EXPIRES, 'echo "held $exp $now"', 'cat "$1/holder.json" 2>/dev/null || true'].join('\n');
  return ['sh', '-c', script, 'depl-lock', dir, '', String(ttlSeconds)];
}

/** The lease era's write under the lock's fence (release.json, intents, the edge's files). */
export function earlierFencedWrite(dir: string, fence: number, ttlSeconds: number, line: string): Argv {
  const script = [
    'exec 9>>"$1.guard"; flock -w 30 9 || { echo "depl-fenced guard-timeout" >&2; exit 75; }',
    '[ -d "$1" ] || { echo "depl-fenced free" >&2; exit 75; }',
    'cur=; read -r cur < "$1/fence" 2>/dev/null || true',
    'if [ "$cur" != "$2" ]; then echo "depl-fenced taken-over" >&2; cat "$1/holder.json" >&2 2>/dev/null; exit 75; fi',
    'now=$(date +%s); exp=; read -r exp < "$1/expires" 2>/dev/null || true; case "$exp" in ""|*[!0-9]*) exp=0;; esac',
    'if [ "$exp" -le "$now" ]; then echo "depl-fenced expired $((now - exp))" >&2; cat "$1/holder.json" >&2 2>/dev/null; exit 75; fi',
    'eval "$4"',
  ].join('\n');
  return ['sh', '-c', script, 'depl-fence', dir, String(fence), String(ttlSeconds), line];
}

/** Before leases (7df2f2d^), acquire was one `mkdir`; it then wrote holder.json into the folder it made. */
export function bareMkdirAcquire(dir: string): Argv {
  return ['sh', '-c', 'mkdir -p "$(dirname "$1")" && mkdir "$1"', 'sh', dir];
}

/** Before leases, `depl lock release` ran bareMkdirBreak only when this found a folder. */
export function bareMkdirStatus(dir: string): Argv {
  return ['test', '-d', dir];
}

export function bareMkdirBreak(dir: string): Argv {
  return ['rm', '-rf', dir];
}
