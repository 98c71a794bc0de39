import { legacyAccessoryServiceName } from './names.js';
import type { ServiceSummary } from './releases.js';
import { LABELS } from './services.js';

/**
 * Accessories made before their services were app-scoped are named after the accessory alone (`redis`); buildinst
 * moves them to `<app>-<accessory>` (src/plan/install-plan.ts, stop-legacy-accessory and remove-legacy-accessory).
 * Until then backup, restore and prune find them under the old name: this is how they tell it is the app's.
 */
export function legacyAccessoryOf<S extends Pick<ServiceSummary, 'name' | 'labels'>>(services: readonly S[], app: string, accessory: string): S | undefined {
  const name = legacyAccessoryServiceName(accessory);
  return services.find((s) => s.name === name && s.labels[LABELS.app] === app && s.labels[LABELS.accessory] === accessory);
}
