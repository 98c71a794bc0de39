import { describe, expect, it } from 'vitest';
import { swarmInitCommand, ensureDockerCommand } from '../../../src/plan/bootstrap.js';
import {
  asRoot, engineStreamCommand, needsSudo, shellAsRoot, sudoProbeCommand, sudoProblem, sudoVerdict,
} from '../../../src/plan/privilege.js';
import { shellLine } from '../../../src/plan/shell.js';

describe('commands as root, for root and for a sudo user', () => {
  it('leaves a root login\'s command line as it is', () => {
    expect(needsSudo('root')).toBe(false);
    expect(asRoot(['docker', 'info'], 'root')).toEqual(['docker', 'info']);
    expect(shellAsRoot('tail -n 5 /x | wc -l', 'root')).toBe('tail -n 5 /x | wc -l');
  });

  it('prefixes the same command line with sudo -n -- for any other user, and nothing else changes', () => {
    expect(needsSudo('ubuntu')).toBe(true);
    for (const argv of [swarmInitCommand('10.0.0.11'), ensureDockerCommand(), ['docker', 'load', '--quiet']]) {
      expect(asRoot(argv, 'ubuntu')).toEqual(['sudo', '-n', '--', ...argv]);
      expect(shellLine(asRoot(argv, 'ubuntu'))).toBe(`sudo -n -- ${shellLine(argv)}`);
    }
  });

  it('runs a shell line as root through sh -c under sudo, quoted once', () => {
    expect(shellAsRoot(`[ -f '/a b' ] && mv -f /x /y`, 'ubuntu')).toBe(`sudo -n -- sh -c '[ -f '\\''/a b'\\'' ] && mv -f /x /y'`);
  });

  it('reaches the Docker API as a stream through sudo, and probes sudo without a password', () => {
    expect(engineStreamCommand('ubuntu')).toEqual(['sudo', '-n', '--', 'docker', 'system', 'dial-stdio']);
    expect(engineStreamCommand('root')).toEqual(['docker', 'system', 'dial-stdio']);
    expect(sudoProbeCommand('ubuntu')).toEqual(['sudo', '-n', '--', 'true']);
  });

  it('tells a sudo that wants a password from one that refuses and from a missing sudo', () => {
    expect(sudoVerdict(0, '')).toBe('ok');
    expect(sudoVerdict(1, 'sudo: a password is required\n')).toBe('password');
    expect(sudoVerdict(1, 'sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper\n')).toBe('password');
    expect(sudoVerdict(1, 'Sorry, user ubuntu is not allowed to execute \'/bin/true\' as root on node-1.\n')).toBe('refused');
    expect(sudoVerdict(127, 'sh: 1: sudo: not found\n')).toBe('missing');
  });

  it('names the node and the user in the error', () => {
    const problem = sudoProblem('password', 'node-2 (10.0.0.12)', 'ubuntu', 'sudo: a password is required\n');
    expect(problem.message).toBe('node-2 (10.0.0.12): sudo asks ubuntu for a password (`sudo -n true`: sudo: a password is required); depl runs every command on the node as root through passwordless sudo');
    expect(problem.hint).toContain('ubuntu ALL=(ALL) NOPASSWD:ALL');
  });
});
