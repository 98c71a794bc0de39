import { createHash } from 'node:crypto';
import type { ChangePlan } from './change-plan.js';
import { POOL_LABEL } from './pool-placement.js';
import { quote } from './shell.js';

/**
 * The hand-off of a preemptible pool node's tasks when the cloud takes the machine back. Nectar deletes a
 * preemptible instance with an ACPI shutdown first and gives the operating system 10 minutes before it removes
 * the machine. A swarm worker cannot drain itself (`docker node update` is a manager's call), so:
 *
 * - on every pool node, a systemd unit whose stop (the shutdown) runs `pool-drain` before Docker stops: it asks
 *   a manager, over SSH with a key that may run only one command there, to drain this node; the swarm then stops
 *   the node's tasks with their own stop grace period (SIGTERM: the crawler's workers hand their jobs back) and
 *   starts them on other nodes of the pool. It waits until no task runs here, then leaves the swarm.
 * - when no manager answers, it stops the tasks itself, with the longest stop grace of the pool's services, so
 *   their SIGTERM handlers still run; the swarm starts them again elsewhere once this node is gone.
 * - on every manager, that one command (`pool-drain-request`, forced by authorized_keys): it drains the pool node
 *   whose swarm address is the address the request came from, and nothing else.
 *
 * Everything here is text computed from the configuration; src/workflows/pool-handoff.ts installs it.
 */

export const HANDOFF_DIR = '/etc/depl/pool-drain';
export const HANDOFF_KEY = `${HANDOFF_DIR}/id_ed25519`;
export const HANDOFF_KNOWN_HOSTS = `${HANDOFF_DIR}/known_hosts`;
export const HANDOFF_FINGERPRINT = `${HANDOFF_DIR}/fingerprint`;
export const DRAIN_SCRIPT = '/usr/local/lib/depl/pool-drain';
export const DRAIN_REQUEST_SCRIPT = '/usr/local/lib/depl/pool-drain-request';
export const DRAIN_UNIT_NAME = 'depl-pool-drain.service';
export const DRAIN_UNIT = `/etc/systemd/system/${DRAIN_UNIT_NAME}`;
/** Nectar's notice between the ACPI shutdown and the forced removal. */
export const SHUTDOWN_NOTICE_SECONDS = 600;
/** Kept back from the notice for the rest of the shutdown after the hand-off. */
const SHUTDOWN_MARGIN_SECONDS = 30;

/**
 * The unit: started at boot (it does nothing then), stopped at shutdown. Ordered after docker.service and the
 * network, so systemd stops it (runs ExecStop) BEFORE it stops Docker and the network: the tasks and the way to
 * a manager are still there while it hands off. TimeoutStopSec gives it the whole notice (systemd's default,
 * 90 s, would cut it short).
 */
export function drainUnitText(): string {
  return `# written by depl node-up (src/plan/pool-shutdown.ts): hands this pool node's swarm tasks off when it shuts down
[Unit]
Description=depl: hand this pool node's swarm tasks to other nodes before the machine goes down
Wants=network-online.target
After=network-online.target docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=${DRAIN_SCRIPT}
TimeoutStopSec=${SHUTDOWN_NOTICE_SECONDS}

[Install]
WantedBy=multi-user.target
`;
}

export interface DrainScriptInput {
  /** The managers' addresses, asked in turn. */
  managers: readonly string[];
  /** The SSH login on the managers (ssh.user) and port. */
  user: string;
  port: number;
  /** The longest stop grace period of the services that run on pools, in seconds. */
  stopGraceSeconds: number;
}

const TASK_FILTER = 'label=com.docker.swarm.task.id';

/** The pool node's side: ask a manager to drain it, wait for its tasks to be gone, leave the swarm. */
export function drainScriptText(input: DrainScriptInput): string {
  const wait = SHUTDOWN_NOTICE_SECONDS - SHUTDOWN_MARGIN_SECONDS;
  const target = (address: string) => quote(`${input.user}@${address}`);
  return `#!/bin/sh
# written by depl node-up (src/plan/pool-shutdown.ts); run by ${DRAIN_UNIT_NAME} when the machine shuts down
set -u
say() { echo "depl pool-drain: $*" >&2; }
tasks() { docker ps -q --filter ${TASK_FILTER} 2>/dev/null; }
deadline=$(( $(date +%s) + ${wait} ))
if [ -z "$(tasks)" ]; then say "no swarm task runs here"; else
  drained=
  for target in ${input.managers.map(target).join(' ')}; do
    if ssh -n -i ${HANDOFF_KEY} -p ${input.port} -o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=${HANDOFF_KNOWN_HOSTS} "$target" drain; then
      drained=$target; break
    fi
    say "$target did not drain this node"
  done
  if [ -z "$drained" ]; then
    say "no manager drained this node: stopping its tasks here (${input.stopGraceSeconds} s grace each)"
    tasks | xargs -r -n 1 -P 16 docker stop -t ${input.stopGraceSeconds} >/dev/null
  else
    say "drained by $drained: waiting for the swarm to stop this node's tasks"
  fi
  while [ -n "$(tasks)" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 2; done
  if [ -n "$(tasks)" ]; then say "tasks still running after ${wait} s: $(tasks | tr '\\n' ' ')"; fi
fi
docker swarm leave >/dev/null 2>&1 && say "left the swarm"
exit 0
`;
}

/**
 * The manager's side, the only command the hand-off key may run there: $1 is the SSH_CONNECTION of the request
 * (client address first). It drains the node whose swarm address is that client address, and only a pool node.
 */
export function drainRequestScriptText(): string {
  return `#!/bin/sh
# written by depl node-up (src/plan/pool-shutdown.ts): run for the key in authorized_keys whose comment is depl-pool-drain
set -eu
client=\${1%% *}
[ -n "$client" ] || { echo "no client address" >&2; exit 2; }
id=$(docker node ls -q | xargs docker node inspect --format '{{.ID}} {{.Status.Addr}} {{index .Spec.Labels "${POOL_LABEL}"}}' | awk -v ip="$client" '$2 == ip && $3 != "" { print $1; exit }')
[ -n "$id" ] || { echo "no pool node at $client" >&2; exit 3; }
docker node update --availability drain "$id" >/dev/null
echo "drained $id"
`;
}

export const HANDOFF_KEY_COMMENT = 'depl-pool-drain';

/**
 * The authorized_keys line on a manager: the key runs the drain request (through sudo for a login that is not
 * root) and nothing else (`restrict`: no shell, no forwarding, no terminal).
 */
export function authorizedKeyLine(publicKey: string, user: string): string {
  const [type, data] = publicKey.trim().split(/\s+/);
  const run = user === 'root' ? DRAIN_REQUEST_SCRIPT : `sudo -n ${DRAIN_REQUEST_SCRIPT}`;
  return `command="${run} \\"$SSH_CONNECTION\\"",restrict ${type} ${data} ${HANDOFF_KEY_COMMENT}`;
}

/** What a pool node and a manager hold: each install writes these and the fingerprint of them all. */
export interface HandoffFiles {
  node: Array<{ path: string; content: string; mode: number }>;
  manager: Array<{ path: string; content: string; mode: number }>;
  authorizedKey: string;
  /** Changes whenever any of it does: a node whose recorded fingerprint differs gets it all again. */
  fingerprint: string;
}

export function handoffFiles(input: DrainScriptInput & { publicKey: string }): HandoffFiles {
  const node = [
    { path: DRAIN_SCRIPT, content: drainScriptText(input), mode: 0o755 },
    { path: DRAIN_UNIT, content: drainUnitText(), mode: 0o644 },
  ];
  const manager = [{ path: DRAIN_REQUEST_SCRIPT, content: drainRequestScriptText(), mode: 0o755 }];
  const authorizedKey = authorizedKeyLine(input.publicKey, input.user);
  const hash = createHash('sha256');
  for (const f of [...node, ...manager]) hash.update(`${f.path}\n${f.mode}\n${f.content}\n`);
  hash.update(authorizedKey);
  return { node, manager, authorizedKey, fingerprint: hash.digest('hex').slice(0, 16) };
}

/** The longest stop grace of the pool's services, in seconds (rounded up); 10 s, Docker's default, when none. */
export function longestStopGrace(graces: readonly string[]): number {
  const seconds = graces.map((g) => {
    const m = /^(\d+)(ms|s|m)$/.exec(g);
    if (!m) return 10;
    const n = Number(m[1]);
    return m[2] === 'ms' ? Math.ceil(n / 1000) : m[2] === 's' ? n : n * 60;
  });
  return Math.max(10, ...seconds);
}

export type HandoffStep =
  | { kind: 'install-handoff'; describe: string; node: string }
  | { kind: 'authorize-handoff'; describe: string; node: string };

/**
 * The installs still to do: each preemptible pool node and each manager whose recorded fingerprint is not the
 * current one (null: nothing recorded, or the node did not answer).
 */
export function planHandoff(facts: { fingerprint: string; poolNodes: ReadonlyArray<{ name: string; recorded: string | null }>; managers: ReadonlyArray<{ name: string; recorded: string | null }> }, command = 'depl node-up'): ChangePlan<HandoffStep> {
  const steps: HandoffStep[] = [];
  // managers first: a pool node that can ask is only useful once a manager answers
  for (const m of facts.managers) {
    if (m.recorded !== facts.fingerprint) steps.push({ kind: 'authorize-handoff', describe: `${m.name}: install the drain request for pool nodes (${DRAIN_REQUEST_SCRIPT}, its key in authorized_keys)`, node: m.name });
  }
  for (const n of facts.poolNodes) {
    if (n.recorded !== facts.fingerprint) steps.push({ kind: 'install-handoff', describe: `${n.name}: install ${DRAIN_UNIT_NAME} (on shutdown: drained by a manager, tasks handed off, swarm left)`, node: n.name });
  }
  return { command, notes: [], steps };
}

/** The hand-off's files as a tree for ansible/bootstrap.yml (bootstrap: ansible): `node/` and `manager/` mirror `/`. */
export interface HandoffTreeFile {
  /** Relative to the tree's folder. */
  path: string;
  content: string;
  mode: number;
}

/**
 * What node-up writes under .depl/pool-handoff/ for the play's pool_handoff role: the files each side holds
 * (the key included, 0600), their fingerprint on both, and the authorized_keys line for the managers.
 */
export function handoffTree(files: HandoffFiles, privateKey: string): HandoffTreeFile[] {
  const fingerprint = { path: HANDOFF_FINGERPRINT, content: `${files.fingerprint}\n`, mode: 0o644 };
  return [
    ...[...files.node, { path: HANDOFF_KEY, content: privateKey, mode: 0o600 }, fingerprint].map((f) => ({ ...f, path: `node${f.path}` })),
    ...[...files.manager, fingerprint].map((f) => ({ ...f, path: `manager${f.path}` })),
    { path: 'authorized_key', content: `${files.authorizedKey}\n`, mode: 0o600 },
  ];
}
