import { execa } from 'execa';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import { ANSIBLE_ENV, parsePlayRecap, type HostRecap } from '../../src/plan/ansible-playbook.js';
import { packagePath } from '../../src/util/paths.js';
import type { Logger } from '../../src/util/log.js';

/** Debian's Ansible (ansible-core with the community.docker collection), installed when missing, as other tools are. */
export async function ensureAnsible(log: Logger): Promise<void> {
  await ensureDebianPackages(['ansible'], log);
}

export const BOOTSTRAP_PLAYBOOK = packagePath('ansible', 'bootstrap.yml');

export interface AnsibleRun {
  exitCode: number;
  output: string;
  recap: Map<string, HostRecap>;
}

/** Runs `ansible` or `ansible-playbook` in `cwd` as an operator would, stdout and stderr together. */
export async function runAnsible(command: 'ansible' | 'ansible-playbook' | 'ansible-lint' | 'ansible-vault', args: string[], cwd: string, timeoutMs = 600_000): Promise<AnsibleRun> {
  const result = await execa(command, args, { cwd, env: { ...ANSIBLE_ENV, NO_COLOR: '1' }, all: true, reject: false, stdin: 'ignore', timeout: timeoutMs });
  const output = String(result.all);
  return { exitCode: result.exitCode ?? 1, output, recap: parsePlayRecap(output) };
}
