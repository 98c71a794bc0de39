import { installIntentFrom } from './install-intent.js';
import { DEFAULT_STATE_ROOT, releaseDocumentFrom, releaseDocumentPath } from './release-store.js';
import type { Remote } from './remote.js';
import { readFiles } from './remote-files.js';
import { installIntentPath, type InstallIntent } from '../plan/install-intent.js';
import type { ReleaseDocument } from '../plan/release-state.js';

/**
 * The release document and the install intent beside it, in one read of the manager: every command that
 * changes a release (and `depl versions`) needs both, and each read over SSH is a command run on the node.
 */
export async function readReleaseFiles(remote: Remote, app: string, root = DEFAULT_STATE_ROOT): Promise<{ doc: ReleaseDocument; intent: InstallIntent | null }> {
  const [docText, intentText] = await readFiles(remote, [releaseDocumentPath(app, root), installIntentPath(app, root)]);
  return { doc: await releaseDocumentFrom(remote, app, root, docText ?? null), intent: installIntentFrom(remote, app, root, intentText ?? null) };
}
