import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  authorizedKeyLine, DRAIN_REQUEST_SCRIPT, DRAIN_SCRIPT, drainRequestScriptText, drainScriptText, drainUnitText, handoffFiles, HANDOFF_KEY,
  longestStopGrace, planHandoff,
} from '../../../src/plan/pool-shutdown.js';

const input = { managers: ['203.0.113.5'], user: 'ubuntu', port: 22, stopGraceSeconds: 45 };
const PUBLIC = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxQdR7JZqJ3L3cUeGq5rWm6F3VfQeZQ1Xo8kq0v4J2a operator@laptop';

/** `sh -n`: the script parses (dash is /bin/sh on Debian and Ubuntu). */
function parses(script: string): string {
  const result = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
  return result.status === 0 ? 'ok' : result.stderr;
}

describe('the pool node shutdown hand-off (text computed from the configuration)', () => {
  it('a unit stopped at shutdown before Docker and the network, with the whole 10-minute notice', () => {
    const unit = drainUnitText();
    expect(unit).toContain('After=network-online.target docker.service');
    expect(unit).toContain(`ExecStop=${DRAIN_SCRIPT}`);
    expect(unit).toContain('TimeoutStopSec=600');
    expect(unit).toMatch(/Type=oneshot\nRemainAfterExit=yes\nExecStart=\/bin\/true/);
    expect(unit).toContain('WantedBy=multi-user.target');
  });

  it("is a unit systemd reads without complaint (systemd-analyze verify, with the script's path on this machine)", () => {
    const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
    if (which.status !== 0) throw new Error('systemd-analyze is missing: apt-get install systemd (it only reads the unit file; nothing is started)');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'depl-unit-'));
    try {
      const file = path.join(dir, 'depl-pool-drain.service');
      writeFileSync(file, drainUnitText().replace(DRAIN_SCRIPT, '/bin/true'));
      const out = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
      // other units of this machine may draw remarks; ours must draw none
      expect(`${out.stdout}${out.stderr}`.split('\n').filter((l) => l.includes('depl-pool-drain'))).toEqual([]);
      writeFileSync(file, drainUnitText().replace('TimeoutStopSec', 'TimeoutStopSecs'));
      const bad = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
      expect(`${bad.stdout}${bad.stderr}`).toContain("Unknown key 'TimeoutStopSecs'");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the pool node asks each manager in turn with its key, falls back to stopping its tasks with their grace, waits, leaves', () => {
    const script = drainScriptText({ ...input, managers: ['203.0.113.5', '203.0.113.6'] });
    expect(parses(script)).toBe('ok');
    expect(script).toContain("for target in ubuntu@203.0.113.5 ubuntu@203.0.113.6; do");
    expect(script).toContain(`ssh -n -i ${HANDOFF_KEY} -p 22 -o BatchMode=yes`);
    expect(script).toContain('"$target" drain');
    expect(script).toContain('xargs -r -n 1 -P 16 docker stop -t 45');
    expect(script).toContain('docker ps -q --filter label=com.docker.swarm.task.id');
    // stops waiting 30 s before Nectar's 10 minutes are up
    expect(script).toContain('deadline=$(( $(date +%s) + 570 ))');
    expect(script).toMatch(/docker swarm leave[^\n]*\nexit 0\n$/);
  });

  it('the manager drains only the pool node whose swarm address is the one asking', () => {
    const script = drainRequestScriptText();
    expect(parses(script)).toBe('ok');
    expect(script).toContain('client=${1%% *}');
    expect(script).toContain(`{{.ID}} {{.Status.Addr}} {{index .Spec.Labels "depl.pool"}}`);
    expect(script).toContain(`awk -v ip="$client" '$2 == ip && $3 != "" { print $1; exit }'`);
    expect(script).toContain('docker node update --availability drain "$id"');
  });

  it("the manager's awk picks the asking pool node, never a node without the pool label or another address", () => {
    const pick = (rows: string, client: string) => execFileSync('awk', ['-v', `ip=${client}`, '$2 == ip && $3 != "" { print $1; exit }'], { input: rows, encoding: 'utf8' }).trim();
    const rows = 'm1 203.0.113.5 \nw2 203.0.113.7 \np3 203.0.113.9 crawl\n';
    expect(pick(rows, '203.0.113.9')).toBe('p3');
    expect(pick(rows, '203.0.113.7')).toBe('');
    expect(pick(rows, '203.0.113.99')).toBe('');
  });

  it('the key may run the drain request and nothing else', () => {
    expect(authorizedKeyLine(PUBLIC, 'ubuntu')).toBe(`command="sudo -n ${DRAIN_REQUEST_SCRIPT} \\"$SSH_CONNECTION\\"",restrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxQdR7JZqJ3L3cUeGq5rWm6F3VfQeZQ1Xo8kq0v4J2a depl-pool-drain`);
    expect(authorizedKeyLine(PUBLIC, 'root')).toMatch(/^command="\/usr\/local\/lib\/depl\/pool-drain-request \\"\$SSH_CONNECTION\\"",restrict /);
  });

  it("waits as long as the pool's slowest service takes to stop", () => {
    expect(longestStopGrace(['15s', '2m', '500ms'])).toBe(120);
    expect(longestStopGrace([])).toBe(10);
  });
});

describe('installing the hand-off (plan as data)', () => {
  const files = handoffFiles({ ...input, publicKey: PUBLIC });

  it('installs on the manager first, then on each pool node whose recorded fingerprint differs', () => {
    const plan = planHandoff({ fingerprint: files.fingerprint, managers: [{ name: 's-0', recorded: null }], poolNodes: [{ name: 's-crawl-0', recorded: files.fingerprint }, { name: 's-crawl-1', recorded: 'old' }] });
    expect(plan.steps.map((st) => `${st.kind} ${st.node}`)).toEqual(['authorize-handoff s-0', 'install-handoff s-crawl-1']);
    expect(planHandoff({ fingerprint: files.fingerprint, managers: [{ name: 's-0', recorded: files.fingerprint }], poolNodes: [{ name: 's-crawl-0', recorded: files.fingerprint }] }).steps).toEqual([]);
  });

  it('a new fingerprint whenever what is installed would change', () => {
    expect(handoffFiles({ ...input, publicKey: PUBLIC }).fingerprint).toBe(files.fingerprint);
    expect(handoffFiles({ ...input, stopGraceSeconds: 60, publicKey: PUBLIC }).fingerprint).not.toBe(files.fingerprint);
    expect(handoffFiles({ ...input, managers: ['203.0.113.8'], publicKey: PUBLIC }).fingerprint).not.toBe(files.fingerprint);
    expect(files.node.map((f) => [f.path, f.mode])).toEqual([[DRAIN_SCRIPT, 0o755], ['/etc/systemd/system/depl-pool-drain.service', 0o644]]);
    expect(files.manager.map((f) => f.path)).toEqual([DRAIN_REQUEST_SCRIPT]);
  });
});
