import { chmod, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { deplDir, writeFileAtomicLocal } from '../apply/inventory.js';
import type { Remote } from '../apply/remote.js';
import { ensureKeyPair, type KeyPair } from '../apply/ssh-keypair.js';
import type { DeplConfig } from '../config/schema.js';
import {
  HANDOFF_DIR, HANDOFF_FINGERPRINT, HANDOFF_KEY, HANDOFF_KEY_COMMENT, DRAIN_UNIT_NAME, handoffFiles, handoffTree, longestStopGrace, planHandoff,
  type HandoffFiles, type HandoffStep,
} from '../plan/pool-shutdown.js';
import { poolsOf } from '../plan/pool-placement.js';
import { quote } from '../plan/shell.js';
import type { Logger } from '../util/log.js';
import { applyPlan } from './apply-plan.js';

/** The nodes of preemptible pools. */
export function preemptibleNodes<T extends { pool?: string }>(config: DeplConfig, nodes: readonly T[]): T[] {
  const pools = poolsOf(config);
  return nodes.filter((n) => n.pool !== undefined && pools[n.pool]?.preemptible === true);
}

/** The hand-off's files for this cluster, and the key pool nodes ask a manager with (made once, kept under .depl/). */
export async function poolHandoffFiles(config: DeplConfig, root: string, managerAddress: string): Promise<{ key: KeyPair; files: HandoffFiles }> {
  const key = await ensureKeyPair(path.join(deplDir({ root }), 'pool_drain_ed25519'), HANDOFF_KEY_COMMENT);
  const poolServices = Object.values(poolsOf(config)).filter((p) => p.preemptible).flatMap((p) => p.services);
  const files = handoffFiles({
    managers: [managerAddress],
    user: config.ssh.user,
    port: config.ssh.port,
    stopGraceSeconds: longestStopGrace(poolServices.map((s) => config.services[s]?.stopGracePeriod ?? '10s')),
    publicKey: key.publicKey,
  });
  return { key, files };
}

/**
 * bootstrap: ansible: the hand-off's files as the play's pool_handoff role copies them (src/plan/pool-shutdown.ts
 * handoffTree), under .depl/pool-handoff/ (only the operator's: it holds the key). Returns the folder.
 */
export async function writePoolHandoffTree(config: DeplConfig, root: string, managerAddress: string): Promise<string> {
  const { key, files } = await poolHandoffFiles(config, root, managerAddress);
  const dir = path.join(deplDir({ root }), 'pool-handoff');
  await rm(dir, { recursive: true, force: true });
  for (const file of handoffTree(files, key.privateKey.toString('utf8'))) await writeFileAtomicLocal(path.join(dir, file.path), file.content, file.mode);
  // writeFileAtomicLocal makes folders 0700; the copied tree's folders must be readable on the nodes (/usr, /etc)
  for (const folder of ['node', 'manager']) await chmodTree(path.join(dir, folder));
  return dir;
}

async function chmodTree(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) if (entry.isDirectory()) await chmodTree(path.join(dir, entry.name));
}

/**
 * node-up's last part when the cluster has preemptible pools: the shutdown hand-off (src/plan/pool-shutdown.ts)
 * installed on each preemptible pool node and the drain request on the manager, planned from the fingerprint
 * each recorded, so a re-run installs only what is missing or out of date.
 */
export async function installPoolHandoff(input: {
  config: DeplConfig;
  root: string;
  manager: { name: string; address: string };
  nodes: ReadonlyArray<{ name: string; pool?: string }>;
  remote: (name: string) => Promise<Remote>;
  log: Logger;
  change: (line: string) => void;
  note: (line: string) => void;
}): Promise<void> {
  const preemptible = preemptibleNodes(input.config, input.nodes);
  if (preemptible.length === 0) return;
  const { key, files } = await poolHandoffFiles(input.config, input.root, input.manager.address);
  const recorded = async (name: string) => ((await (await input.remote(name)).readFile(HANDOFF_FINGERPRINT)) ?? '').trim() || null;
  const plan = planHandoff({
    fingerprint: files.fingerprint,
    managers: [{ name: input.manager.name, recorded: await recorded(input.manager.name) }],
    poolNodes: await Promise.all(preemptible.map(async (n) => ({ name: n.name, recorded: await recorded(n.name) }))),
  });
  await applyPlan(plan, {
    async run(step: HandoffStep) {
      const remote = await input.remote(step.node);
      if (step.kind === 'authorize-handoff') {
        for (const f of files.manager) await remote.writeFileAtomic(f.path, f.content, f.mode);
        // the login user's authorized_keys: any earlier hand-off key out, this one in (file kept the user's, 0600)
        const user = quote(input.config.ssh.user);
        await remote.shell([
          `home=$(getent passwd ${user} | cut -d: -f6)`,
          'mkdir -p "$home/.ssh"',
          'f="$home/.ssh/authorized_keys"; t="$f.depl-$$"',
          `{ grep -v ${quote(` ${HANDOFF_KEY_COMMENT}$`)} "$f" 2>/dev/null || true; echo ${quote(files.authorizedKey)}; } > "$t"`,
          `chown ${user}: "$t" "$home/.ssh"; chmod 600 "$t"; mv -f "$t" "$f"`,
        ].join('; '));
        await remote.writeFileAtomic(HANDOFF_FINGERPRINT, `${files.fingerprint}\n`, 0o644);
        input.change(`${step.node}: drain requests from pool nodes accepted (their key may run only that)`);
        return;
      }
      await remote.exec(['mkdir', '-p', HANDOFF_DIR]);
      await remote.exec(['chmod', '700', HANDOFF_DIR]);
      await remote.writeFileAtomic(HANDOFF_KEY, key.privateKey, 0o600);
      for (const f of files.node) await remote.writeFileAtomic(f.path, f.content, f.mode);
      // enabled only where systemd runs (a VM); the unit's stop at shutdown is what runs the hand-off
      const enabled = await remote.shell(`if [ -d /run/systemd/system ]; then systemctl daemon-reload && systemctl enable --now ${DRAIN_UNIT_NAME} && echo enabled; else echo no-systemd; fi`);
      if (/^no-systemd$/m.test(enabled.stdout)) input.note(`${step.node}: no systemd runs there, so ${DRAIN_UNIT_NAME} is written but cannot run at shutdown`);
      await remote.writeFileAtomic(HANDOFF_FINGERPRINT, `${files.fingerprint}\n`, 0o644);
      input.change(`${step.node}: shutdown hand-off installed (${DRAIN_UNIT_NAME})`);
    },
  }, { log: input.log });
}
