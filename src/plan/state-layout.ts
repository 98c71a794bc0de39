import { planControllerUpgrade, type ControllerUpgrade } from './autoscale-upgrade.js';
import type { PresentSpec } from './inspected-spec.js';
import { parseLeaseAnswer, type LeaseHolder } from './lock.js';
import type { Argv } from './shell.js';
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
 * the new lock, in three steps, each of which may be killed and is done again by the next command:
 * 1. prepare (one script, under layout 1's lock guard): refuses while a depl from before, or its renewal task,
 *    holds layout 1's lease; otherwise leaves a lease there that never expires and names no holder that can
 *    renew it (an earlier depl or renewal task then always finds the lock held, and its fenced writes are
 *    refused), then moves the ACME account and the task's record into tls/ by rename. An empty file stays where
 *    the account was while earlier controllers still mount /dev/null over it (their restart would fail without).
 * 2. the services an earlier depl installed with more than they need are installed again as this depl plans
 *    them (the renewal task, src/plan/tls/renewal-upgrade.ts; autoscale controllers that hold the Docker socket
 *    or see the account's folder, src/plan/autoscale-upgrade.ts); one this depl cannot plan is reported.
 * 3. finish: the empty placeholder and layout 1's record go, and the layout file is written last. While a service
 *    is reported, finish waits: every command says so again until it is dealt with.
 */
export const STATE_LAYOUT = 2;

export function layoutFile(root: string, app: string): string {
  return `${root}/${app}/layout`;
}

/** Whether the layout file's number (as the lock's acquisition read it, 0 when there is none) is STATE_LAYOUT or later. */
export function layoutIsCurrent(layout: number): boolean {
  return layout >= STATE_LAYOUT;
}

/** Layout 1's lease holder token that says it moved: an earlier depl shows the holder's command as the reason. */
export const MOVED_LEASE_TOKEN = 'moved-to-lease';
/** 2100-01-01T00:00:00Z in epoch seconds: the moved lease's expiry. */
const NEVER = 4_102_444_800;

export function movedLeaseHolder(at: string): LeaseHolder {
  return {
    holder: `depl (state layout ${STATE_LAYOUT})`,
    host: '-',
    pid: 0,
    command: `none: this cluster's lock moved to lease/lock; upgrade depl to run commands here`,
    since: at,
    token: MOVED_LEASE_TOKEN,
  };
}

/**
 * Step 1, as one script run on the manager: prints `prepared moved` (it found an earlier depl's files) or
 * `prepared fresh`, or `held <expires> <now>` and the holder's JSON.
 */
export function prepareLayoutCommand(root: string, app: string, at: string): Argv {
  const script = [
    'set -eu',
    'd=$1',
    'umask 077',
    'exec 9>>"$d/lock.guard"; flock -w 30 9 || { echo guard-timeout; exit 0; }',
    'now=$(date +%s)',
    `if [ -d "$d/lock" ] && ! grep -qF '"token":"${MOVED_LEASE_TOKEN}"' "$d/lock/holder.json" 2>/dev/null; then`,
    '  exp=$(cat "$d/lock/expires" 2>/dev/null || true); case "$exp" in ""|*[!0-9]*) exp=$(( $(stat -c %Y "$d/lock") + 60 ));; esac',
    '  if [ "$exp" -gt "$now" ]; then echo "held $exp $now"; cat "$d/lock/holder.json" 2>/dev/null || true; exit 0; fi',
    'fi',
    // anything an earlier depl left: a fresh app folder (a new cluster's first command) has nothing to move
    'earlier=fresh; if [ -e "$d/lock" ] || [ -s "$d/tls-account.json" ] || [ -f "$d/tls-renewal.json" ]; then earlier=moved; fi',
    'mkdir -p "$d/lock" "$d/lease" "$d/tls"',
    'printf "%s\\n" "$2" > "$d/lock/holder.json.tmp" && mv -f "$d/lock/holder.json.tmp" "$d/lock/holder.json"',
    `echo ${NEVER} > "$d/lock/expires.tmp" && mv -f "$d/lock/expires.tmp" "$d/lock/expires"`,
    'echo moved > "$d/lock/fence.tmp" && mv -f "$d/lock/fence.tmp" "$d/lock/fence"',
    'if [ -s "$d/tls-account.json" ]; then',
    // an account in both places only if one was made after a kill: neither is dropped
    '  if [ -e "$d/tls/account.json" ]; then mv -f "$d/tls-account.json" "$d/tls/account-earlier.json"; else mv "$d/tls-account.json" "$d/tls/account.json"; fi',
    '  : > "$d/tls-account.json"',
    'fi',
    'if [ -f "$d/tls-renewal.json" ]; then mv -f "$d/tls-renewal.json" "$d/tls/renewal.json"; fi',
    'echo "prepared $earlier"',
  ].join('\n');
  return ['sh', '-c', script, 'depl-layout', `${root}/${app}`, JSON.stringify(movedLeaseHolder(at))];
}

/** Step 3: prints `done` once the layout file says STATE_LAYOUT. */
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

export type PrepareAnswer = { status: 'prepared'; moved: boolean } | { status: 'held'; expiresInSeconds: number; holder: LeaseHolder | null } | { status: 'guard-timeout' };

export function parsePrepareAnswer(stdout: string): PrepareAnswer {
  const first = stdout.split('\n')[0]?.trim() ?? '';
  // (a bare `prepared`: the same script before it said what it found)
  if (first === 'prepared' || first.startsWith('prepared ')) return { status: 'prepared', moved: first !== 'prepared fresh' };
  if (first === 'guard-timeout') return { status: 'guard-timeout' };
  const answer = parseLeaseAnswer(stdout);
  if (answer.status !== 'held') throw new Error(`unexpected answer from the layout script: ${stdout.slice(0, 200)}`);
  return { status: 'held', expiresInSeconds: answer.expiresAt - answer.now, holder: answer.holder };
}

export type ServiceUpgrade = RenewerUpgrade | ControllerUpgrade;

export interface LayoutMigration {
  prepare: Argv;
  /** The services to install again, in order: controllers first (they stop seeing the account's folder), the renewal task last. */
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
  return {
    prepare: prepareLayoutCommand(input.root, input.app, input.at),
    upgrades,
    reports,
    finish: reports.length === 0 ? finishLayoutCommand(input.root, input.app) : null,
  };
}
