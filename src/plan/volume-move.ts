import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { DeplConfig } from '../config/schema.js';
import type { ErrorCode } from '../error-codes.js';
import type { ChangePlan } from './change-plan.js';
import { JOB_LABELS, jobName, type JobSpec } from './jobs.js';
import { parseJsonDocument } from './json-document.js';
import { appVolumeName, legacyVolumeName } from './names.js';
import type { ScaleTarget } from './scale.js';
import { LABELS, parseVolume } from './services.js';
import { quote } from './shell.js';

/**
 * A volume an earlier depl made under depl.yaml's name alone (`redis-data`) is moved into the app-scoped one
 * (`<app>-redis-data`, src/plan/names.ts) by the next buildinst, before it plans its install: two apps with a
 * `data` volume then no longer share one set of files. Docker cannot rename a volume, so the data is copied:
 *
 *   record the move on the manager -> stop the app's services that mount it -> wait until no container holds it
 *   -> a one-off job on the node that holds it copies it into the new volume and checks the copy file by file
 *   -> the services are pointed at the new volume -> started again -> the old volume is removed (or kept, and
 *   said why) -> the record goes.
 *
 * The services are pointed at the new volume only once the copy is verified: until then they mount the old one,
 * whose files nothing has changed, so a failed copy is undone by starting them again where they were. A depl
 * killed anywhere in between leaves the record; the next buildinst plans from it and finishes the move (the copy
 * again from the start when the services were not pointed yet, else what is left after that).
 */

/** The move of one volume, as recorded before anything changes. */
const recordedMoveSchema = z.object({
  /** depl.yaml's name of the volume. */
  volume: z.string(),
  from: z.string(),
  to: z.string(),
  /** The node whose engine holds `from`; null: no node has it (its services never ran), nothing to copy. */
  node: z.string().nullable(),
  /** The image the copy runs in: one the node has, a user's. */
  image: z.string(),
  /** The app's services that mount it, with the replicas they ran before the move stopped them. */
  users: z.array(z.object({ name: z.string(), replicas: z.number().int().min(0) })),
});
export type RecordedMove = z.infer<typeof recordedMoveSchema>;

const recordSchema = z.object({ schema: z.literal(1), app: z.string(), by: z.string(), at: z.string(), moves: z.array(recordedMoveSchema) });
export type VolumeMoveRecord = z.infer<typeof recordSchema>;

export function volumeMoveRecordPath(app: string, root: string): string {
  return `${root}/${app}/volume-move.json`;
}

export function parseVolumeMoveRecord(text: string): { ok: true; record: VolumeMoveRecord } | { ok: false; problem: string } {
  const parsed = parseJsonDocument(recordSchema, text);
  return parsed.ok ? { ok: true, record: parsed.value } : parsed;
}

export function renderVolumeMoveRecord(record: VolumeMoveRecord): string {
  return JSON.stringify(recordSchema.parse(record), null, 2) + '\n';
}

/** A service on the swarm as the move needs it: its labels, replicas, image and the named volumes it mounts. */
export interface VolumeUserService {
  name: string;
  labels: Record<string, string>;
  replicas: number;
  image: string;
  volumes?: readonly string[];
}

/** Which nodes' engines have a volume of that name, and which nodes could not be asked. */
export interface VolumeLocation {
  nodes: string[];
  unreachable: string[];
}

export interface VolumeMoveFacts {
  config: Pick<DeplConfig, 'app' | 'services' | 'accessories'>;
  /** The app's services on the swarm now. */
  present: readonly VolumeUserService[];
  /** Services of other apps (or of none) that mount one of the unscoped names. */
  others: readonly VolumeUserService[];
  /** The move a killed earlier buildinst recorded, if any. */
  record: VolumeMoveRecord | null;
  /** By unscoped volume name: where it is (read only for the volumes some of the app's services mount). */
  locations: Readonly<Record<string, VolumeLocation>>;
  by: string;
  at: string;
}

export type VolumeMoveStep =
  | { kind: 'record-moves'; record: VolumeMoveRecord; describe: string; undo: string }
  | { kind: 'stop-users'; volume: string; services: string[]; restart: ScaleTarget[]; describe: string; undo: string }
  | { kind: 'await-free'; volume: string; node: string; from: string; describe: string }
  /** `to` emptied first (a killed copy's leftovers), then filled and compared; the job exits non-zero on any difference. */
  | { kind: 'copy-volume'; volume: string; node: string; from: string; to: string; job: JobSpec; describe: string; undo: string }
  /** The commit point: from here the move goes forward only (a failure leaves the record for the next buildinst). */
  | { kind: 'repoint-users'; volume: string; from: string; to: string; services: string[]; describe: string }
  | { kind: 'start-users'; volume: string; targets: ScaleTarget[]; describe: string }
  | { kind: 'remove-old-volume'; volume: string; node: string; from: string; describe: string }
  | { kind: 'clear-record'; describe: string };

export type VolumeMovePlan = ChangePlan<VolumeMoveStep> & { moves: RecordedMove[] };

export type VolumeMoveRefusal = { message: string; hint: string; code: ErrorCode };

/** The job's exits that say why a copy was not made (the rest are the tools' own). */
export const COPY_EXIT = { targetNotEmpty: 3, differs: 4 } as const;

const MOUNT_FROM = '/depl-volume/from';
const MOUNT_TO = '/depl-volume/to';

/** How long the copy of one volume may take (a large database included). */
export const VOLUME_COPY_TIMEOUT_MS = 60 * 60_000;

/** Every depl.yaml volume with the app's services that mount it under the unscoped name. */
function legacyUsers(facts: VolumeMoveFacts): { volume: string; from: string; to: string; users: VolumeUserService[] }[] {
  const { app } = facts.config;
  const sources = new Set<string>();
  for (const owner of [...Object.values(facts.config.accessories), ...Object.values(facts.config.services)]) {
    if (owner.volume !== undefined) sources.add(parseVolume(owner.volume).source);
  }
  return [...sources].sort().flatMap((volume) => {
    const from = legacyVolumeName(volume);
    const to = appVolumeName(app, volume);
    const users = facts.present.filter((s) => s.labels[LABELS.app] === app && (s.volumes ?? []).includes(from)).sort((a, b) => a.name.localeCompare(b.name));
    return users.length > 0 ? [{ volume, from, to, users }] : [];
  });
}

/** Where a volume is: one node, none (never made), or a refusal (on several, or perhaps on a node that cannot be asked). */
function nodeOf(from: string, location: VolumeLocation | undefined): { ok: true; node: string | null } | { ok: false; refusal: VolumeMoveRefusal } {
  const where = location ?? { nodes: [], unreachable: [] };
  if (where.nodes.length === 1) return { ok: true, node: where.nodes[0]! };
  if (where.nodes.length > 1) {
    return {
      ok: false,
      refusal: {
        message: `volume ${from} is on ${where.nodes.length} nodes (${where.nodes.join(', ')}): depl cannot tell which one holds the data to move into its app-scoped name`,
        hint: `Keep the one with the data and remove the others (docker volume rm ${from} on the other nodes), then run buildinst again; nothing was changed.`,
        code: 'VOLUME_ON_SEVERAL_NODES',
      },
    };
  }
  if (where.unreachable.length > 0) {
    return {
      ok: false,
      refusal: {
        message: `volume ${from} must be moved into its app-scoped name, but node${where.unreachable.length === 1 ? '' : 's'} ${where.unreachable.join(', ')} could not be reached to find it`,
        hint: 'Bring the node back (depl status shows the nodes), then run buildinst again; nothing was changed and the services still run on the old volume.',
        code: 'VOLUME_UNREACHABLE',
      },
    };
  }
  return { ok: true, node: null };
}

/** The copy as a one-off swarm job pinned to the volume's node: both volumes mounted, no network, as root. */
export function volumeCopyJob(app: string, move: Pick<RecordedMove, 'volume' | 'from' | 'to' | 'image'>, node: string, requireEmpty: boolean, by: string, at: string): JobSpec {
  const id = createHash('sha256').update(`${app}\0${move.from}\0${move.to}`).digest('hex').slice(0, 6);
  const labels = {
    [LABELS.app]: app, [JOB_LABELS.job]: 'volume', [JOB_LABELS.service]: move.volume, [JOB_LABELS.version]: '', [JOB_LABELS.by]: by, [JOB_LABELS.started]: at,
    [VOLUME_MOVE_LABELS.from]: move.from, [VOLUME_MOVE_LABELS.to]: move.to,
  };
  return {
    Name: jobName(app, 'move', id, 'volume'),
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: move.image, User: '0', Command: ['sh'], Args: ['-c', volumeCopyScript(requireEmpty)], Labels: labels,
        Mounts: [{ Type: 'volume', Source: move.from, Target: MOUNT_FROM, ReadOnly: true }, { Type: 'volume', Source: move.to, Target: MOUNT_TO }],
      },
      RestartPolicy: { Condition: 'none', Delay: 0, MaxAttempts: 0, Window: 0 },
      Networks: [],
      Placement: { Constraints: [`node.hostname==${node}`] },
    },
    Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
    EndpointSpec: { Mode: 'dnsrr' },
  };
}

export const VOLUME_MOVE_LABELS = { from: 'depl.volume-move.from', to: 'depl.volume-move.to' } as const;

/**
 * The copy: the target emptied (a killed copy's part), `cp -a` and the root's owner and mode, then both trees listed with each entry's type,
 * size, mode, owner and a file's SHA-256: the listings must be equal. `requireEmpty`: no move was recorded before
 * this one, so a target with files is someone's data, not a killed copy's, and is not touched.
 */
export function volumeCopyScript(requireEmpty: boolean): string {
  const from = quote(MOUNT_FROM);
  const to = quote(MOUNT_TO);
  return [
    'set -eu',
    ...(requireEmpty ? [`if [ -n "$(ls -A ${to})" ]; then echo "the new volume already holds files: not overwritten" >&2; exit ${COPY_EXIT.targetNotEmpty}; fi`] : []),
    `find ${to} -mindepth 1 -maxdepth 1 -exec rm -rf {} +`,
    `cp -a ${from}/. ${to}/`,
    // the volume's own folder too (a database refuses a data folder of another owner or mode), which cp may leave as it found it
    `chown "$(stat -c '%u:%g' ${from})" ${to}`,
    `chmod "$(stat -c '%a' ${from})" ${to}`,
    'listing() { cd "$1" && find . | LC_ALL=C sort | while IFS= read -r f; do if [ -f "$f" ] && [ ! -L "$f" ]; then echo "$f $(stat -c \'%s %a %u:%g\' "$f") $(sha256sum < "$f" | cut -d\' \' -f1)"; else echo "$f $(stat -c \'%F %a %u:%g\' "$f")"; fi; done; }',
    `a=$(listing ${from}); b=$(listing ${to})`,
    `if [ "$a" != "$b" ]; then echo "the copy differs from the volume:" >&2; printf '%s\\n' "$a" > /tmp/a; printf '%s\\n' "$b" > /tmp/b; diff /tmp/a /tmp/b >&2 || true; exit ${COPY_EXIT.differs}; fi`,
    'echo "copied and verified: $(printf \'%s\\n\' "$a" | wc -l) entries"',
  ].join('\n');
}

/**
 * The move as data, or a refusal before anything changes. A recorded move is finished from where it stopped;
 * otherwise every depl.yaml volume the app's services mount under the unscoped name is moved.
 */
export function planVolumeMoves(facts: VolumeMoveFacts, command: string): { ok: true; plan: VolumeMovePlan } | { ok: false; refusal: VolumeMoveRefusal } {
  const { app } = facts.config;
  const notes: string[] = [];
  const steps: VolumeMoveStep[] = [];
  let moves: RecordedMove[];
  if (facts.record !== null) {
    moves = facts.record.moves;
    notes.push(`an interrupted move of volume${moves.length === 1 ? '' : 's'} ${moves.map((m) => m.from).join(', ')} (by ${facts.record.by} at ${facts.record.at}) is finished first`);
  } else {
    moves = [];
    for (const found of legacyUsers(facts)) {
      const where = nodeOf(found.from, facts.locations[found.from]);
      if (!where.ok) return { ok: false, refusal: where.refusal };
      const running = facts.others.filter((s) => (s.volumes ?? []).includes(found.from) && s.replicas > 0);
      if (running.length > 0 && where.node !== null) {
        return {
          ok: false,
          refusal: {
            message: `volume ${found.from} is to be moved into ${found.to}, but ${running.map((s) => `${s.name} (app ${s.labels[LABELS.app] ?? 'none'})`).join(', ')} also ${running.length === 1 ? 'runs' : 'run'} on it: its files would change during the copy`,
            hint: `Two apps share one volume (both were deployed before volume names were app-scoped). Stop ${running.map((s) => s.name).join(', ')} (docker service scale ${running[0]!.name}=0), run buildinst again, then deploy that app again so that it moves its own copy; nothing was changed.`,
            code: 'VOLUME_SHARED',
          },
        };
      }
      moves.push({ volume: found.volume, from: found.from, to: found.to, node: where.node, image: found.users[0]!.image, users: found.users.map((u) => ({ name: u.name, replicas: u.replicas })) });
    }
    if (moves.length === 0) return { ok: true, plan: { command, notes, steps, moves } };
    steps.push({
      kind: 'record-moves', record: { schema: 1, app, by: facts.by, at: facts.at, moves },
      describe: `record on the manager the move of ${moves.map((m) => `${m.from} into ${m.to}`).join(', ')} (the next command finishes it if this one dies)`,
      undo: 'forget that record',
    });
  }
  for (const move of moves) {
    const present = move.users.filter((u) => facts.present.some((s) => s.name === u.name));
    const mounts = (name: string) => facts.present.find((s) => s.name === name)?.volumes ?? [];
    const pointed = present.every((u) => !mounts(u.name).includes(move.from));
    const restart = present.filter((u) => u.replicas > 0).map((u) => ({ service: u.name, replicas: u.replicas }));
    if (!pointed) {
      notes.push(`volume ${move.from} (depl.yaml's ${move.volume}) becomes ${move.to}: ${present.map((u) => u.name).join(', ')} ${present.length === 1 ? 'is' : 'are'} down while it is copied${move.node !== null ? ` on ${move.node}` : ''}`);
      steps.push({
        kind: 'stop-users', volume: move.volume, services: present.map((u) => u.name), restart,
        describe: `stop ${present.map((u) => u.name).join(', ')}: ${move.from} is copied while nothing writes to it`,
        undo: `start ${restart.length > 0 ? restart.map((t) => t.service).join(', ') : 'nothing'} again on ${move.from}`,
      });
      if (move.node !== null) {
        steps.push({ kind: 'await-free', volume: move.volume, node: move.node, from: move.from, describe: `wait until no container on ${move.node} holds ${move.from}` });
        steps.push({
          kind: 'copy-volume', volume: move.volume, node: move.node, from: move.from, to: move.to,
          job: volumeCopyJob(app, move, move.node, facts.record === null, facts.by, facts.at),
          describe: `copy ${move.from} into ${move.to} with a one-off job on ${move.node}, and compare the two file by file`,
          undo: `remove ${move.to} on ${move.node} (${move.from} is as it was)`,
        });
      } else {
        notes.push(`volume ${move.from} is on no node (its services never ran): nothing to copy`);
      }
      steps.push({
        kind: 'repoint-users', volume: move.volume, from: move.from, to: move.to, services: present.map((u) => u.name),
        describe: `point ${present.map((u) => u.name).join(', ')} at ${move.to} (from here the move goes forward only)`,
      });
    }
    if (restart.length > 0) {
      steps.push({ kind: 'start-users', volume: move.volume, targets: restart, describe: `start ${restart.map((t) => `${t.service} (${t.replicas})`).join(', ')} again on ${move.to}` });
    }
    if (move.node !== null) {
      const keeping = facts.others.filter((s) => (s.volumes ?? []).includes(move.from));
      if (present.length === 0) {
        // nothing says the copy was verified (no service of the move is left to mount either volume): the old one stays
        notes.push(`volume ${move.from} is kept on ${move.node}: none of the services that mounted it is left, so nothing shows its copy ${move.to} was verified`);
      } else if (keeping.length > 0) {
        notes.push(`volume ${move.from} is kept on ${move.node}: ${keeping.map((s) => `${s.name} (app ${s.labels[LABELS.app] ?? 'none'})`).join(', ')} still mount${keeping.length === 1 ? 's' : ''} it; that app moves its own copy at its next buildinst`);
      } else {
        steps.push({ kind: 'remove-old-volume', volume: move.volume, node: move.node, from: move.from, describe: `remove ${move.from} on ${move.node}: its data is in ${move.to}` });
      }
    }
  }
  steps.push({ kind: 'clear-record', describe: 'forget the record of the move: it is done' });
  return { ok: true, plan: { command, notes, steps, moves } };
}

/**
 * A service's spec pointed at the new volume: its volume mounts of `from` mount `to`, and a stateful service's
 * `depl.volume` label (which versions share a volume: the stateful takeover) names `to`. Everything else is kept.
 */
export function repointedSpec(spec: Record<string, unknown>, from: string, to: string): Record<string, unknown> {
  const labels = spec.Labels as Record<string, string> | undefined;
  const template = (spec.TaskTemplate ?? {}) as Record<string, unknown>;
  const container = (template.ContainerSpec ?? {}) as Record<string, unknown>;
  const mounts = container.Mounts as { Type?: string; Source?: string }[] | undefined;
  return {
    ...spec,
    ...(labels !== undefined ? { Labels: labels[LABELS.volume] === from ? { ...labels, [LABELS.volume]: to } : labels } : {}),
    TaskTemplate: {
      ...template,
      ContainerSpec: { ...container, ...(mounts !== undefined ? { Mounts: mounts.map((m) => (m.Type === 'volume' && m.Source === from ? { ...m, Source: to } : m)) } : {}) },
    },
  };
}
