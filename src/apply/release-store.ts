import * as z from 'zod';
import { OperationError } from '../errors.js';
import { emptyReleaseState, HISTORY_ACTIONS, parseReleaseDocument, toDocument, type ReleaseDocument } from '../plan/release-state.js';
import type { StdinFile } from '../plan/stdin-files.js';
import type { Remote } from './remote.js';

/**
 * The release document (src/plan/release-state.ts) on the manager, so every operator's `depl status` sees the
 * same truth: read and validated on every read, written atomically (temporary file + rename) under the lock.
 */
export const DEFAULT_STATE_ROOT = '/var/lib/depl';

export function releaseDocumentPath(app: string, root = DEFAULT_STATE_ROOT): string {
  return `${root}/${app}/release.json`;
}

/** Before the one document there were two files: state.json (marks) and edge/edge-state.json (a copy). */
const legacyState = z.object({
  live: z.string().nullable(),
  previous: z.string().nullable(),
  canary: z.object({ version: z.string(), weight: z.number() }).nullable(),
  history: z.array(z.object({ at: z.string(), action: z.string(), version: z.string().nullable(), weight: z.number().optional(), by: z.string(), note: z.string().optional() })),
});

export async function readReleaseDocument(remote: Remote, app: string, root = DEFAULT_STATE_ROOT): Promise<ReleaseDocument> {
  return releaseDocumentFrom(remote, app, root, await remote.readFile(releaseDocumentPath(app, root)));
}

/** The document from the text of its file (null: there is none yet), read by the caller. */
export async function releaseDocumentFrom(remote: Remote, app: string, root: string, text: string | null): Promise<ReleaseDocument> {
  const file = releaseDocumentPath(app, root);
  if (text === null) return migrateLegacy(remote, app, root);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new OperationError(`${remote.name}:${file} is not valid JSON`, 'Restore it from a backup, or remove it: the next `depl switch <version>` starts a new one (the history is lost).', 'RELEASE_STATE_CORRUPT', { cause: error });
  }
  const result = parseReleaseDocument(parsed);
  if (!result.ok) {
    throw new OperationError(`${remote.name}:${file} is not a depl release document (${result.problem})`, 'Restore it from a backup, or remove it: the next `depl switch <version>` starts a new one (the history is lost).', 'RELEASE_STATE_CORRUPT');
  }
  if (result.doc.app !== app) throw new OperationError(`${remote.name}:${file} belongs to app "${result.doc.app}", not "${app}"`, undefined, 'RELEASE_STATE_CORRUPT');
  return result.doc;
}

export async function writeReleaseDocument(remote: Remote, doc: ReleaseDocument, root = DEFAULT_STATE_ROOT): Promise<void> {
  const { file, content, mode } = releaseDocumentFile(doc, root);
  await remote.writeFileAtomic(file, content, mode);
}

/** The document as the file it is written to (a caller that writes it in a command of its own: src/apply/edge/config.ts). */
export function releaseDocumentFile(doc: ReleaseDocument, root = DEFAULT_STATE_ROOT): StdinFile {
  return { file: releaseDocumentPath(doc.app, root), content: JSON.stringify(doc, null, 2) + '\n', mode: 0o644 };
}

/** A cluster deployed by an older depl: its marks become the document (written by the next change). */
async function migrateLegacy(remote: Remote, app: string, root: string): Promise<ReleaseDocument> {
  const text = await remote.readFile(`${root}/${app}/state.json`);
  const empty = emptyReleaseState(app);
  if (text === null) return toDocument(empty);
  let parsed: z.infer<typeof legacyState>;
  try {
    parsed = legacyState.parse(JSON.parse(text));
  } catch {
    return toDocument(empty);
  }
  const actions = new Set<string>(HISTORY_ACTIONS);
  return toDocument({
    ...empty,
    live: parsed.live,
    previous: parsed.previous,
    canary: parsed.canary,
    history: parsed.history.filter((h) => actions.has(h.action)) as typeof empty.history,
  });
}
