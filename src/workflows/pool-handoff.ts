import path from 'node:path';
import { deplDir } from '../apply/inventory.js';
import type { Remote } from '../apply/remote.js';
import { ensureKeyPair } from '../apply/ssh-keypair.js';
import type { DeplConfig } from '../config/schema.js';
import {
  HANDOFF_DIR, HANDOFF_FINGERPRINT, HANDOFF_KEY, HANDOFF_KEY_COMMENT, DRAIN_UNIT_NAME, handoffFiles, longestStopGrace, planHandoff, type HandoffStep,
} from '../plan/pool-shutdown.js';
import { poolsOf } from '../plan/pool-placement.js';
import { quote } from '../plan/shell.js';
import type { Logger } from '../util/log.js';
import { applyPlan } from './apply-plan.js';

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
  const pools = poolsOf(input.config);
  const preemptible = input.nodes.filter((n) => n.pool !== undefined && pools[n.pool]?.preemptible === true);
  if (preemptible.length === 0) return;
  // the key pool nodes ask a manager with: made once, kept beside the operator's own under .depl/
  const key = await ensureKeyPair(path.join(deplDir({ root: input.root }), 'pool_drain_ed25519'), HANDOFF_KEY_COMMENT);
  const poolServices = Object.values(pools).filter((p) => p.preemptible).flatMap((p) => p.services);
  const files = handoffFiles({
    managers: [input.manager.address],
    user: input.config.ssh.user,
    port: input.config.ssh.port,
    stopGraceSeconds: longestStopGrace(poolServices.map((s) => input.config.services[s]?.stopGracePeriod ?? '10s')),
    publicKey: key.publicKey,
  });
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
