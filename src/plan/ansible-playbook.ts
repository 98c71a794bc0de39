import type { Argv } from './shell.js';

/**
 * `bootstrap: ansible`: node-up runs ansible/bootstrap.yml with the inventory it wrote. The command and its
 * environment are data, so what runs is unit-tested without Ansible; src/apply/ansible.ts runs it.
 */
export interface PlaybookRun {
  inventory: string;
  playbook: string;
  /** `--check --diff`: report what would change, change nothing. */
  check?: boolean;
}

export function ansiblePlaybookCommand(run: PlaybookRun): Argv {
  return ['ansible-playbook', '-i', run.inventory, ...(run.check ? ['--check', '--diff'] : []), run.playbook];
}

/**
 * Plain lines depl can relay as progress (no colours, no cowsay), no .retry files beside the playbook, which
 * may sit in a read-only install, and output as it happens rather than when Python's buffer fills.
 */
export const ANSIBLE_ENV: Readonly<Record<string, string>> = {
  ANSIBLE_NOCOLOR: '1',
  ANSIBLE_NOCOWS: '1',
  ANSIBLE_RETRY_FILES_ENABLED: 'False',
  ANSIBLE_HOST_KEY_CHECKING: 'True',
  PYTHONUNBUFFERED: '1',
};

/** What to tell an operator whose machine has no ansible-playbook. */
export const ANSIBLE_INSTALL_HINT =
  'Install Ansible: on Debian or Ubuntu `apt-get install ansible` (it includes the community.docker collection), or '
  + '`apt-get install ansible-core` plus `ansible-galaxy collection install community.docker`; or set bootstrap: ssh in depl.yaml.';

export interface HostRecap {
  ok: number;
  changed: number;
  unreachable: number;
  failed: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

/** The PLAY RECAP at the end of a run: `node-1 : ok=9 changed=2 unreachable=0 failed=0 skipped=1 ...` per host. */
export function parsePlayRecap(output: string): Map<string, HostRecap> {
  const recap = new Map<string, HostRecap>();
  const at = output.lastIndexOf('PLAY RECAP');
  if (at < 0) return recap;
  for (const line of output.slice(at).split('\n').slice(1)) {
    const match = /^(\S+)\s+:\s+(.*)$/.exec(line.trim());
    if (!match) continue;
    const counts = Object.fromEntries([...match[2]!.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
    recap.set(match[1]!, {
      ok: counts.ok ?? 0, changed: counts.changed ?? 0, unreachable: counts.unreachable ?? 0, failed: counts.failed ?? 0,
      skipped: counts.skipped ?? 0, rescued: counts.rescued ?? 0, ignored: counts.ignored ?? 0,
    });
  }
  return recap;
}

/** The lines of a play worth relaying as progress: plays, tasks, and what each host did (ok lines are noise). */
export function playProgressLine(line: string): string | null {
  const trimmed = line.trim();
  const heading = /^(PLAY|TASK|RUNNING HANDLER) \[(.*)\] \**$/.exec(trimmed);
  if (heading) return `${heading[1] === 'PLAY' ? 'play' : 'task'}: ${heading[2]}`;
  if (/^(changed|fatal|failed|unreachable|FAILED - RETRYING):/i.test(trimmed)) return trimmed;
  if (/^\S+\s+:\s+ok=\d+/.test(trimmed)) return `recap ${trimmed.replace(/\s+/g, ' ')}`;
  return null;
}
