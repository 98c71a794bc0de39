import type { DeplConfig } from '../config/schema.js';
import { appVolumeName } from './names.js';
import { parseVolume } from './services.js';

/**
 * The volume each of depl.yaml's named volumes is on the cluster, by its depl.yaml name: app-scoped
 * (`<app>-<volume>`), so two apps' `data` are two volumes. One an earlier depl made under the unscoped name is
 * moved into this one by buildinst before it plans its install (src/plan/volume-move.ts).
 */
export function volumeNames(config: Pick<DeplConfig, 'app' | 'services' | 'accessories'>): Record<string, string> {
  const names: Record<string, string> = {};
  for (const owner of [...Object.values(config.accessories), ...Object.values(config.services)]) {
    if (owner.volume === undefined) continue;
    const { source } = parseVolume(owner.volume);
    names[source] = appVolumeName(config.app, source);
  }
  return names;
}
