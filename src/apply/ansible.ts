import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { OperationError, UserError } from '../errors.js';
import { ANSIBLE_ENV, ANSIBLE_INSTALL_HINT, parsePlayRecap, playProgressLine, type HostRecap } from '../plan/ansible-playbook.js';
import type { Argv } from '../plan/shell.js';
import type { Logger } from '../util/log.js';
import { Secret } from '../util/secret.js';

/** Refuses before anything changes when this machine cannot run a playbook. */
export async function requireAnsiblePlaybook(): Promise<void> {
  const probe = await execa('ansible-playbook', ['--version'], { reject: false, env: ANSIBLE_ENV });
  if (probe.exitCode === 0) return;
  const why = (probe as { code?: string }).code === 'ENOENT' ? 'ansible-playbook is not installed on this machine' : `ansible-playbook --version failed: ${String(probe.stderr).trim()}`;
  throw new UserError(`bootstrap: ansible in depl.yaml, but ${why}`, ANSIBLE_INSTALL_HINT, 'ANSIBLE_MISSING');
}

export interface PlaybookOutcome {
  output: string;
  recap: Map<string, HostRecap>;
}

/** Runs a playbook command, relaying plays, tasks and what changed as progress lines while it runs. */
export async function runPlaybook(argv: Argv, log: Logger, options: { cwd?: string } = {}): Promise<PlaybookOutcome> {
  const [file, ...args] = argv;
  const child = execa(file!, args, { cwd: options.cwd, env: ANSIBLE_ENV, all: true, reject: false });
  const lines: string[] = [];
  const reading = (async () => {
    for await (const line of createInterface({ input: child.all! })) {
      lines.push(line);
      const progress = playProgressLine(line);
      if (progress) log.step(`ansible: ${progress}`);
    }
  })();
  const [result] = await Promise.all([child, reading]);
  const output = lines.join('\n');
  const recap = parsePlayRecap(output);
  if (result.exitCode !== 0) {
    const failures = lines.filter((line) => /^(fatal|failed|unreachable|ERROR)/i.test(line.trim())).slice(-5);
    throw new OperationError(
      `${argv.slice(0, 1).join(' ')} failed (exit ${result.exitCode ?? 'signal'}):\n${(failures.length > 0 ? failures : lines.slice(-10)).join('\n')}`,
      'Read the play above; fix the node, then re-run node-up (the playbook changes only what differs).',
      'ANSIBLE_FAILED',
    );
  }
  return { output, recap };
}

/**
 * The plaintext of an Ansible Vault file, in memory only. Without a password file ansible-vault asks for the
 * password on the terminal itself.
 */
export async function viewVault(argv: Argv, options: { prompt: boolean }): Promise<Secret> {
  const [file, ...args] = argv;
  const result = await execa(file!, args, {
    env: { ...ANSIBLE_ENV, PAGER: 'cat' },
    stdin: options.prompt ? 'inherit' : 'ignore',
    stderr: options.prompt ? 'inherit' : 'pipe',
    reject: false,
  });
  if ((result as { code?: string }).code === 'ENOENT') {
    throw new UserError('ansible-vault is not installed on this machine', ANSIBLE_INSTALL_HINT, 'ANSIBLE_MISSING');
  }
  if (result.exitCode !== 0) {
    const why = String(result.stderr ?? '').split('\n').map((l) => l.trim()).filter((l) => l.length > 0).slice(-1)[0] ?? `exit ${result.exitCode}`;
    throw new UserError(`ansible-vault could not open ${argv[argv.length - 1]}: ${why}`, 'Check the vault file and its password (--vault-password-file). Nothing was changed.', 'VAULT_OPEN');
  }
  return new Secret(String(result.stdout));
}
