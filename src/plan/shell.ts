/**
 * Commands are built as argument arrays (Kamal's "commands as data") and only turned into a shell line
 * at the moment they cross SSH. Quoting is done here, once, so nothing user-supplied is interpolated raw.
 */
export type Argv = readonly string[];

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function quote(arg: string): string {
  if (arg.length > 0 && SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellLine(argv: Argv): string {
  return argv.map(quote).join(' ');
}

/** `a && b && c`, each command quoted. */
export function all(...commands: Argv[]): string {
  return commands.map(shellLine).join(' && ');
}
