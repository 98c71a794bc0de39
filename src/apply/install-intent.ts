import { OperationError } from '../errors.js';
import { installIntentPath, parseInstallIntent, renderInstallIntent, type InstallIntent } from '../plan/install-intent.js';
import { DEFAULT_STATE_ROOT } from './release-store.js';
import type { Remote } from './remote.js';
import { quote } from '../plan/shell.js';

/** The install intent (src/plan/install-intent.ts) on the manager, next to the release document. */
export async function readInstallIntent(remote: Remote, app: string, root = DEFAULT_STATE_ROOT): Promise<InstallIntent | null> {
  return installIntentFrom(remote, app, root, await remote.readFile(installIntentPath(app, root)));
}

/** The intent from the text of its file (null: no install is under way), read by the caller. */
export function installIntentFrom(remote: Pick<Remote, 'name'>, app: string, root: string, text: string | null): InstallIntent | null {
  const file = installIntentPath(app, root);
  if (text === null) return null;
  const parsed = parseInstallIntent(text);
  if (!parsed.ok) {
    throw new OperationError(
      `${remote.name}:${file} is not a depl install intent (${parsed.problem})`,
      `It names a buildinst that did not finish, and every command that takes the lock (buildinst, switch, prune...) refuses until it is gone: ` +
        `look at it on ${remote.name} (it names the version being installed), remove ${file}, then \`depl versions\` lists that version if its services were left: ` +
        'install it again with `depl buildinst --version <it>` or remove it with `depl prune`.',
      'RELEASE_STATE_CORRUPT',
    );
  }
  return parsed.intent;
}

export async function writeInstallIntent(remote: Remote, intent: InstallIntent, root = DEFAULT_STATE_ROOT): Promise<void> {
  await remote.writeFileAtomic(installIntentPath(intent.app, root), renderInstallIntent(intent), 0o644);
}

export async function clearInstallIntent(remote: Remote, app: string, root = DEFAULT_STATE_ROOT): Promise<void> {
  // a shell line: through a fenced remote (src/apply/fenced-remote.ts) it runs only under the caller's lease
  await remote.shell(`rm -f ${quote(installIntentPath(app, root))}`);
}
