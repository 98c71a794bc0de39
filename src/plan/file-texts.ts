/**
 * Several files' texts printed by one shell command, for a caller that pays a round trip per command (SSH):
 * every file after a `+` (or a lone `-` for one that does not exist), each ended by a NUL. Text files hold no
 * NUL, so one that does is reported unreadable rather than split wrongly. Used by a plain read of several files
 * (src/apply/ssh.ts) and by the lock's acquisition, which reads the release files once the lease is held.
 */

/** Prints the files named by the positional parameters ("$@"): a shell loop to end a script with. */
export const PRINT_FILES = 'for f; do if [ -e "$f" ]; then printf +; cat "$f" || exit 1; else printf -; fi; printf "\\0"; done';

/** The texts PRINT_FILES printed for `count` files (null for each that does not exist), or null when it cannot be split so. */
export function parseFileTexts(printed: string, count: number): Array<string | null> | null {
  const parts = printed.split('\0');
  if (parts.length !== count + 1) return null;
  return parts.slice(0, count).map((part) => (part.startsWith('+') ? part.slice(1) : null));
}
