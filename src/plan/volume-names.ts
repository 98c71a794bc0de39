import type { DeplConfig } from '../config/schema.js';
import { appVolumeName, legacyVolumeName } from './names.js';
import { LABELS, parseVolume } from './services.js';

/** What the swarm says about one of the app's services: its labels and the named volumes its spec mounts. */
export interface VolumeUser {
  labels: Record<string, string>;
  /** The named volumes its spec mounts (absent: not known, counted as none). */
  volumes?: readonly string[];
}

/**
 * The volume each of depl.yaml's named volumes is on the cluster, by its depl.yaml name. New ones are app-scoped
 * (`<app>-<volume>`); one this app's services (an accessory, or a version's stateful service) already mount
 * under the unscoped name keeps it, since a volume cannot be renamed and a new name would start empty: its data
 * stays where it is. Nothing is copied, so there is no half-moved volume for a killed depl to leave.
 */
export function volumeNames(config: Pick<DeplConfig, 'app' | 'services' | 'accessories'>, present: readonly VolumeUser[]): Record<string, string> {
  const mine = present.filter((s) => s.labels[LABELS.app] === config.app);
  const inUse = (name: string) => mine.some((s) => (s.volumes ?? []).includes(name) || s.labels[LABELS.volume] === name);
  const names: Record<string, string> = {};
  for (const owner of [...Object.values(config.accessories), ...Object.values(config.services)]) {
    if (owner.volume === undefined) continue;
    const { source } = parseVolume(owner.volume);
    names[source] = inUse(legacyVolumeName(source)) ? legacyVolumeName(source) : appVolumeName(config.app, source);
  }
  return names;
}
