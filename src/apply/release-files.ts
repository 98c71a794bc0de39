import { installIntentFrom } from './install-intent.js';
import { DEFAULT_STATE_ROOT, releaseDocumentFrom, releaseDocumentPath } from './release-store.js';
import type { Remote } from './remote.js';
import { readFiles } from './remote-files.js';
import { OperationError } from '../errors.js';
import { installIntentPath, type InstallIntent } from '../plan/install-intent.js';
import type { ReleaseDocument } from '../plan/release-state.js';

/**
 * The install intent as read beside the release document: what it says (null: no install under way), or why it
 * could not be read. Kept apart so that a corrupt intent does not hide the release state from the commands an
 * operator runs during an incident (status, stats, versions); a command that acts on the intent takes it with
 * `intentToActOn` and refuses with the typed error.
 */
export type InstallIntentRead = { ok: true; intent: InstallIntent | null } | { ok: false; file: string; error: OperationError };

/**
 * The release document and the install intent beside it, in one read of the manager: every command that
 * changes a release (and `depl versions`) needs both, and each read over SSH is a command run on the node.
 * `alreadyRead`: their texts as the lock's acquisition read them (HeldLock.reads), which saves the read.
 */
export async function readReleaseFiles(remote: Remote, app: string, root = DEFAULT_STATE_ROOT, alreadyRead?: ReadonlyMap<string, string | null> | null): Promise<{ doc: ReleaseDocument; intent: InstallIntentRead }> {
  const files = releaseFilePaths(app, root);
  const [docText, intentText] = alreadyRead != null && files.every((file) => alreadyRead.has(file))
    ? files.map((file) => alreadyRead.get(file)!)
    : await readFiles(remote, files);
  return { doc: await releaseDocumentFrom(remote, app, root, docText ?? null), intent: intentRead(remote, app, root, intentText ?? null) };
}

/** The release document's and the install intent's files: what a release change reads first (with the lock, HeldLock.reads). */
export function releaseFilePaths(app: string, root = DEFAULT_STATE_ROOT): string[] {
  return [releaseDocumentPath(app, root), installIntentPath(app, root)];
}

function intentRead(remote: Pick<Remote, 'name'>, app: string, root: string, text: string | null): InstallIntentRead {
  try {
    return { ok: true, intent: installIntentFrom(remote, app, root, text) };
  } catch (error) {
    if (error instanceof OperationError) return { ok: false, file: installIntentPath(app, root), error };
    throw error;
  }
}

/** The intent for a command that repairs or replaces the install it names: an unreadable one is refused. */
export function intentToActOn(read: InstallIntentRead): InstallIntent | null {
  if (!read.ok) throw read.error;
  return read.intent;
}
