import { planControllerUpgrade, type ControllerUpgrade } from './autoscale-upgrade.js';
import { replicasOf, seesHostPath, type PresentSpec } from './inspected-spec.js';
import { parseLeaseAnswer, type LeaseHolder } from './lock.js';
import type { Argv } from './shell.js';
import { ACME_ACCOUNT_FILE, renewerStateRoot, tlsStateDir } from './tls/renewal.js';
import { planRenewerUpgrade, type RenewerUpgrade } from './tls/renewal-upgrade.js';

/**
 * The app's folder on the manager (`<state>/<app>`) changes shape between depl versions; `<state>/<app>/layout`
 * says which shape it has. Layout 2 gives what the renewal task writes folders of its own, so that it mounts those
 * and never the app's folder with the release document in it (src/plan/tls/renewal.ts renewerMounts):
 *
 *   layout 1 (no layout file)            layout 2
 *   lock/, lock.guard, lock.fence        lease/lock/, lease/lock.guard, lease/lock.fence   (src/plan/lock.ts)
 *   tls-account.json                     tls/account.json
 *   tls-renewal.json                     tls/renewal.json
 *
 * The first command that takes the lock on a layout 1 cluster moves it (src/workflows/state-layout.ts), under
 * the new lock, in steps each of which may be killed and is done again by the next command:
 * 1. fence (one script, under layout 1's lock guard): refuses while a depl from before, or its renewal task,
 *    holds layout 1's lease; otherwise puts at `lock` a plain FILE (earlierLockFence): every depl before layout 2
 *    finds the lock held there for good (its `mkdir` fails and the file's time is in 2100), its `depl lock release`
 *    finds no lease folder to remove (it says the lock is free and removes nothing), and its fenced writes are
 *    refused. Nothing secret moves yet.
 * 2. stop: every service an earlier depl installed that could read where the ACME account goes (the Docker socket,
 *    or the app's folder without tls/ hidden) is scaled to no replicas and waited for.
 * 3. move: the ACME account and the task's record into tls/ by rename. An empty file stays where the account was
 *    while earlier controllers' specs still mount /dev/null over it (their restart would fail without).
 * 4. the services an earlier depl installed with more than they need are installed again as this depl plans
 *    them (the renewal task, src/plan/tls/renewal-upgrade.ts; autoscale controllers that hold the Docker socket
 *    or see the account's folder, src/plan/autoscale-upgrade.ts); one this depl cannot plan is reported (and, if
 *    it could read the account, stays stopped).
 * 5. finish: the empty placeholder and layout 1's record go, and the layout file is written last. While a service
 *    is reported, finish waits: every command says so again until it is dealt with.
 * So no process an earlier depl started can read the account where it is moved to, at any step or after any kill.
 *
 * A layout file that says 2 counts only while the fence at `lock` is a plain file (the lock's acquisition looks,
 * src/plan/lock.ts): a cluster moved by a depl that left a lease folder there instead, which an earlier depl's
 * `lock release` removes, is fenced again by step 1, which says so when that folder was gone or taken.
 */
export const STATE_LAYOUT = 2;

export function layoutFile(root: string, app: string): string {
  return `${root}/${app}/layout`;
}

/** Layout 1's lock, where the fence of step 1 stays for good. */
export function earlierLockPath(root: string, app: string): string {
  return `${root}/${app}/lock`;
}

/** Whether the layout file's number (as the lock's acquisition read it, 0 when there is none) is STATE_LAYOUT or later. */
export function layoutIsCurrent(layout: number): boolean {
  return layout >= STATE_LAYOUT;
}

/** The holder token of the lease folder a depl of the first layout 2 left at `lock` (before the fence was a file). */
export const MOVED_LEASE_TOKEN = 'moved-to-lease';
/** 2100-01-01T00:00:00Z in epoch seconds: the fence file's time, which an earlier depl reads as its lease's start. */
const NEVER = 4_102_444_800;

/** What the fence file says to whoever looks at the path an earlier depl's lock error names. */
export function earlierLockFence(at: string): string {
  return [
    `depl (state layout ${STATE_LAYOUT}) moved this cluster's lock to lease/lock on ${at}.`,
    'A depl from before that finds the lock held here for good: upgrade depl to run commands on this cluster.',
    'Do not remove this file: an earlier depl would then take the lock here while a current one holds it.',
  ].join('\n');
}

const IS_MOVED_LEASE = `grep -qF '"token":"${MOVED_LEASE_TOKEN}"' "$d/lock/holder.json" 2>/dev/null`;

/**
 * Step 1, as one script run on the manager: prints `prepared earlier` (it found an earlier depl's files),
 * `prepared nothing`, or `prepared reopened` (the layout file said STATE_LAYOUT, but the fence was gone or an
 * earlier depl's lease was there, expired); or `held <expires> <now>` (and ` reopened`) and the holder's JSON.
 */
export function prepareLayoutCommand(root: string, app: string, at: string): Argv {
  const script = [
    'set -eu',
    'd=$1',
    'umask 077',
    'exec 9>>"$d/lock.guard"; flock -w 30 9 || { echo guard-timeout; exit 0; }',
    'now=$(date +%s)',
    'layout=; read -r layout < "$d/layout" 2>/dev/null || true; case "$layout" in ""|*[!0-9]*) layout=0;; esac',
    // the fence as it should be, the lease folder the first layout 2 left, or our own fence half made: nobody else's
    `ours=no; if { [ -f "$d/lock" ] && [ ! -L "$d/lock" ]; } || { [ -d "$d/lock" ] && ${IS_MOVED_LEASE}; } || [ -e "$d/lock.moved-new" ]; then ours=yes; fi`,
    'reopened=; if [ "$layout" -ge "$3" ] && [ "$ours" = no ]; then reopened=" reopened"; fi',
    `if [ -d "$d/lock" ] && ! ${IS_MOVED_LEASE}; then`,
    '  exp=$(cat "$d/lock/expires" 2>/dev/null || true); case "$exp" in ""|*[!0-9]*) exp=$(( $(stat -c %Y "$d/lock") + 60 ));; esac',
    '  if [ "$exp" -gt "$now" ]; then echo "held $exp $now$reopened"; cat "$d/lock/holder.json" 2>/dev/null || true; exit 0; fi',
    'fi',
    // anything an earlier depl left: a fresh app folder (a new cluster's first command) has nothing to move
    'found=nothing; if [ -e "$d/lock" ] || [ -s "$d/tls-account.json" ] || [ -f "$d/tls-renewal.json" ]; then found=earlier; fi',
    'if [ -n "$reopened" ]; then found=reopened; elif [ "$layout" -ge "$3" ]; then found=nothing; fi',
    'mkdir -p "$d/lease" "$d/tls"',
    'if [ -L "$d/lock" ] || [ ! -f "$d/lock" ]; then',
    // made beside it first: a kill between the two steps leaves the fence to be put in place by the next run
    '  printf "%s\\n" "$2" > "$d/lock.moved-new"',
    `  touch -d @${NEVER} "$d/lock.moved-new"`,
    '  rm -rf "$d/lock"',
    '  mv -fT "$d/lock.moved-new" "$d/lock"',
    'fi',
    'echo "prepared $found"',
  ].join('\n');
  return ['sh', '-c', script, 'depl-layout', `${root}/${app}`, earlierLockFence(at), String(STATE_LAYOUT)];
}

/** Step 3: the ACME account and the task's record into tls/ (prints `moved`). Run once nothing an earlier depl started can read tls/. */
export function moveLayoutFilesCommand(root: string, app: string): Argv {
  const script = [
    'set -eu',
    'd=$1',
    'umask 077',
    'mkdir -p "$d/tls"',
    'if [ -s "$d/tls-account.json" ]; then',
    // an account in both places only if one was made after a kill: neither is dropped
    '  if [ -e "$d/tls/account.json" ]; then mv -f "$d/tls-account.json" "$d/tls/account-earlier.json"; else mv "$d/tls-account.json" "$d/tls/account.json"; fi',
    '  : > "$d/tls-account.json"',
    'fi',
    'if [ -f "$d/tls-renewal.json" ]; then mv -f "$d/tls-renewal.json" "$d/tls/renewal.json"; fi',
    'echo moved',
  ].join('\n');
  return ['sh', '-c', script, 'depl-layout', `${root}/${app}`];
}

/** Step 5: prints `done` once the layout file says STATE_LAYOUT. */
export function finishLayoutCommand(root: string, app: string): Argv {
  const script = [
    'set -eu',
    'd=$1',
    'if [ -f "$d/tls-account.json" ] && [ ! -s "$d/tls-account.json" ]; then rm -f "$d/tls-account.json"; fi',
    'rm -f "$d/tls-renewal.json"',
    'echo "$2" > "$d/layout.tmp" && mv -f "$d/layout.tmp" "$d/layout"',
    'echo done',
  ].join('\n');
  return ['sh', '-c', script, 'depl-layout', `${root}/${app}`, String(STATE_LAYOUT)];
}

export type PrepareAnswer =
  | { status: 'prepared'; found: 'earlier' | 'nothing' | 'reopened' }
  | { status: 'held'; expiresInSeconds: number; holder: LeaseHolder | null; reopened: boolean }
  | { status: 'guard-timeout' };

export function parsePrepareAnswer(stdout: string): PrepareAnswer {
  const first = stdout.split('\n')[0]?.trim() ?? '';
  // (`prepared`, `prepared moved`, `prepared fresh`: the same step before the fence was a file)
  const prepared = /^prepared(?: (\w+))?$/.exec(first);
  if (prepared !== null) {
    const word = prepared[1];
    return { status: 'prepared', found: word === 'reopened' ? 'reopened' : word === 'nothing' || word === 'fresh' ? 'nothing' : 'earlier' };
  }
  if (first === 'guard-timeout') return { status: 'guard-timeout' };
  const answer = parseLeaseAnswer(stdout);
  if (answer.status !== 'held') throw new Error(`unexpected answer from the layout script: ${stdout.slice(0, 200)}`);
  return { status: 'held', expiresInSeconds: answer.expiresAt - answer.now, holder: answer.holder, reopened: first.endsWith(' reopened') };
}

export type ServiceUpgrade = RenewerUpgrade | ControllerUpgrade;

export interface LayoutMigration {
  prepare: Argv;
  /**
   * The services an earlier depl started that could read the ACME account where it is moved to (they hold the
   * Docker socket, or mount the app's folder without tls/ hidden), still running: stopped before `move`.
   */
  stops: string[];
  /** Services this depl cannot plan that could read the account: they stay stopped until an operator deals with them. */
  keptStopped: string[];
  move: Argv;
  /** The services to install again, in order: controllers first, the renewal task last. */
  upgrades: Array<Exclude<ServiceUpgrade, { kind: 'report' }>>;
  /** Services this depl cannot plan: said with a hint, and the layout file is not written while there are any. */
  reports: Array<Extract<ServiceUpgrade, { kind: 'report' }>>;
  /** null while something is reported. */
  finish: Argv | null;
}

/**
 * What moves the app's folder to STATE_LAYOUT, from its layout file's number (0: none, layout 1) and the app's
 * services as the swarm has them; null when it has that layout already.
 */
export function planStateLayout(input: { root: string; app: string; layout: number; services: readonly PresentSpec[]; at: string }): LayoutMigration | null {
  if (layoutIsCurrent(input.layout)) return null;
  const planned = input.services.flatMap((s) => [planControllerUpgrade(input.app, s), planRenewerUpgrade(input.app, s)]).filter((u): u is ServiceUpgrade => u !== null);
  const upgrades = planned.filter((u): u is Exclude<ServiceUpgrade, { kind: 'report' }> => u.kind !== 'report')
    .sort((a, b) => Number(a.kind === 'renewer') - Number(b.kind === 'renewer') || a.service.localeCompare(b.service));
  const reports = planned.filter((u): u is Extract<ServiceUpgrade, { kind: 'report' }> => u.kind === 'report');
  // where the account goes (the renewal task's paths are always under renewerStateRoot, the state root of a real cluster)
  const account = [...new Set([input.root, renewerStateRoot])].map((root) => `${tlsStateDir(input.app, root)}/${ACME_ACCOUNT_FILE}`);
  const seeing = input.services.filter((s) => planned.some((u) => u.service === s.name) && account.some((file) => seesHostPath(s.spec, file)));
  const stops = seeing.filter((s) => replicasOf(s.spec) !== 0).map((s) => s.name).sort();
  return {
    prepare: prepareLayoutCommand(input.root, input.app, input.at),
    stops,
    keptStopped: seeing.filter((s) => reports.some((r) => r.service === s.name)).map((s) => s.name).sort(),
    move: moveLayoutFilesCommand(input.root, input.app),
    upgrades,
    reports,
    finish: reports.length === 0 ? finishLayoutCommand(input.root, input.app) : null,
  };
}
