import { describe, expect, it } from 'vitest';
import { shellLine } from '../../../src/plan/shell.js';
import { execArgv, SpawnerRemote } from '../../support/spawner-remote.js';

/** The fake cluster's manager starts `exec <argv>` lines without a shell in front (test/support/spawner-remote.ts). */
describe('a line that only execs a command', () => {
  it('is read back into the very argv that was quoted, quotes, newlines and empty words included', () => {
    const argv = ['sh', '-c', `exec 9>>"$1.guard"\necho 'done' $x`, 'depl-fence', '', "it's", '/tmp/a b', '7'];
    expect(execArgv(`exec ${shellLine(argv)}`)).toEqual(argv);
  });

  it('is not taken for one when the shell would do more than exec it', () => {
    for (const line of ['exec a; b', 'exec a > x', 'exec a && b', "exec 'a'b", 'exec $x', 'exec a  b', 'exec', 'echo a', "exec 'a", 'exec a*']) {
      expect(execArgv(line), line).toBeNull();
    }
  });

  it('runs as the shell would have run it: arguments, stdin, output and exit code', async () => {
    const remote = new SpawnerRemote();
    const script = 'printf "%s|" "$@"; cat; echo err >&2; exit 3';
    const argv = ['sh', '-c', script, 'x', "it's", '', 'a b'];
    const direct = await remote.shell(`exec ${shellLine(argv)}`, { stdin: 'in', check: false });
    // the same command as a shell's child (no `exec`: the line goes to `sh -c`)
    const throughShell = await remote.shell(shellLine(argv), { stdin: 'in', check: false });
    expect(direct).toEqual({ code: 3, stdout: "it's||a b|in", stderr: 'err\n' });
    expect(direct).toEqual(throughShell);
  });
});
