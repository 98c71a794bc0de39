import { shellLine, type Argv } from './shell.js';

/**
 * Every command depl runs on a node is written as root would run it. When the SSH login user is not root
 * (Ubuntu cloud images: `ubuntu`), the same command line runs through passwordless sudo; this file is the
 * one place that prefix is made. `-n`: sudo fails at once instead of waiting for a password nobody types.
 */
export const SUDO_PREFIX: Argv = ['sudo', '-n', '--'];

export function needsSudo(user: string): boolean {
  return user !== 'root';
}

/** The command as the login user runs it to act as root. */
export function asRoot(argv: Argv, user: string): Argv {
  return needsSudo(user) ? [...SUDO_PREFIX, ...argv] : argv;
}

/** A shell line (pipes, redirects) run as root: for a non-root user, the whole line goes to `sh -c` under sudo. */
export function shellAsRoot(line: string, user: string): string {
  return needsSudo(user) ? shellLine(asRoot(['sh', '-c', line], user)) : line;
}

/**
 * The Docker Engine API as a byte stream on stdin/stdout (what `docker -H ssh://` uses). A root login
 * forwards the engine's unix socket instead; a sudo user cannot open that socket, so it runs this.
 */
export function engineStreamCommand(user: string): Argv {
  return asRoot(['docker', 'system', 'dial-stdio'], user);
}

/** Run once per connection for a sudo user: does sudo work without a password? */
export function sudoProbeCommand(user: string): Argv {
  return asRoot(['true'], user);
}

export type SudoVerdict = 'ok' | 'password' | 'refused' | 'missing';

/** What `sudo -n -- true` said, from its exit code and stderr. */
export function sudoVerdict(code: number, stderr: string): SudoVerdict {
  if (code === 0) return 'ok';
  if (code === 127 || /sudo: (command )?not found/.test(stderr)) return 'missing';
  if (/password is required|terminal is required|askpass/i.test(stderr)) return 'password';
  return 'refused';
}

/** One line for a node whose sudo does not let the login user act as root without a password. */
export function sudoProblem(verdict: Exclude<SudoVerdict, 'ok'>, node: string, user: string, stderr: string): { message: string; hint: string } {
  const said = stderr.trim().split('\n').slice(-1)[0] ?? '';
  switch (verdict) {
    case 'password':
      return {
        message: `${node}: sudo asks ${user} for a password (\`sudo -n true\`: ${said}); depl runs every command on the node as root through passwordless sudo`,
        hint: `On the node, give ${user} passwordless sudo (a file in /etc/sudoers.d with "${user} ALL=(ALL) NOPASSWD:ALL", as cloud images have), or log in as root (ssh.user in depl.yaml).`,
      };
    case 'missing':
      return {
        message: `${node}: sudo is not installed, and ${user} is not root; depl runs every command on the node as root`,
        hint: `Install sudo on the node and give ${user} passwordless sudo, or log in as root (ssh.user in depl.yaml).`,
      };
    default:
      return {
        message: `${node}: ${user} may not run commands as root with sudo (\`sudo -n true\`: ${said})`,
        hint: `On the node, give ${user} passwordless sudo (a file in /etc/sudoers.d with "${user} ALL=(ALL) NOPASSWD:ALL"), or log in as root (ssh.user in depl.yaml).`,
      };
  }
}
