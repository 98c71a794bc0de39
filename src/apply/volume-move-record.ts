import { OperationError } from '../errors.js';
import { quote } from '../plan/shell.js';
import { parseVolumeMoveRecord, renderVolumeMoveRecord, volumeMoveRecordPath, type VolumeMoveRecord } from '../plan/volume-move.js';
import { DEFAULT_STATE_ROOT } from './release-store.js';
import type { Remote } from './remote.js';

/** The record of a volume move (src/plan/volume-move.ts) on the manager, beside the install intent. */
export async function readVolumeMoveRecord(remote: Remote, app: string, root = DEFAULT_STATE_ROOT): Promise<VolumeMoveRecord | null> {
  const file = volumeMoveRecordPath(app, root);
  const text = await remote.readFile(file);
  if (text === null) return null;
  const parsed = parseVolumeMoveRecord(text);
  if (!parsed.ok) {
    throw new OperationError(
      `${remote.name}:${file} is not a depl volume move record (${parsed.problem})`,
      `It names volumes a buildinst was moving into their app-scoped names. Look at it on ${remote.name}: each move's services mount either the old volume ` +
        '(then the move starts again once the file is gone) or the new one (its copy was verified); remove the file, then run buildinst again.',
      'RELEASE_STATE_CORRUPT',
    );
  }
  return parsed.record;
}

export async function writeVolumeMoveRecord(remote: Remote, record: VolumeMoveRecord, root = DEFAULT_STATE_ROOT): Promise<void> {
  await remote.writeFileAtomic(volumeMoveRecordPath(record.app, root), renderVolumeMoveRecord(record), 0o644);
}

export async function clearVolumeMoveRecord(remote: Remote, app: string, root = DEFAULT_STATE_ROOT): Promise<void> {
  // a shell line: through a fenced remote (src/apply/fenced-remote.ts) it runs only under the caller's lease
  await remote.shell(`rm -f ${quote(volumeMoveRecordPath(app, root))}`);
}
