import type { InstalledVersion } from './release-state.js';
import { LABELS } from './services.js';

/**
 * Installed versions are read back from the swarm itself (service labels), so two operators see the same
 * list. These functions turn that listing into versions; src/plan/release-state.ts decides what to do with them.
 */
export interface ServiceSummary {
  name: string;
  labels: Record<string, string>;
  /** ISO time the service was created. */
  createdAt: string;
  replicas: number;
}

export function versionsFromServices(app: string, services: ServiceSummary[]): InstalledVersion[] {
  const byLabel = new Map<string, InstalledVersion>();
  for (const svc of services) {
    if (svc.labels[LABELS.app] !== app) continue;
    const label = svc.labels[LABELS.version];
    if (label === undefined) continue;
    const version = byLabel.get(label) ?? { label, createdAt: svc.createdAt, services: [] };
    if (svc.createdAt < version.createdAt) version.createdAt = svc.createdAt;
    version.services.push(svc.name);
    version.replicas = { ...version.replicas, [svc.name]: svc.replicas };
    const wanted = Number(svc.labels[LABELS.replicas]);
    if (svc.labels[LABELS.replicas] !== undefined && Number.isInteger(wanted)) version.wanted = { ...version.wanted, [svc.name]: wanted };
    const volume = svc.labels[LABELS.volume];
    if (volume !== undefined) version.stateful = { ...version.stateful, [svc.name]: volume };
    const branch = svc.labels[LABELS.branch];
    if (branch !== undefined) version.branch = branch;
    const port = Number(svc.labels[LABELS.port]);
    if (svc.labels[LABELS.http] === 'true' && Number.isInteger(port) && version.http === undefined) {
      const health = svc.labels[LABELS.health];
      version.http = { service: svc.name, port, ...(health !== undefined ? { health } : {}) };
    }
    byLabel.set(label, version);
  }
  const versions = [...byLabel.values()];
  for (const v of versions) v.services.sort();
  return versions.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.label.localeCompare(b.label));
}

/** A swarm service as the Engine API lists it (`GET /services`, or `docker service inspect`): the parts read here. */
export interface EngineServiceObject {
  ID?: string;
  CreatedAt?: string;
  Spec?: { Name?: string; Labels?: Record<string, string>; Mode?: { Replicated?: { Replicas?: number } } };
}

export function serviceSummaries(list: readonly EngineServiceObject[]): ServiceSummary[] {
  return list.map((s) => ({
    name: s.Spec?.Name ?? s.ID ?? '',
    labels: s.Spec?.Labels ?? {},
    createdAt: s.CreatedAt ?? '',
    replicas: s.Spec?.Mode?.Replicated?.Replicas ?? 0,
  }));
}

export type { InstalledVersion };

/** Live, canary and previous as optional marks (absent when unset). */
export interface VersionMarks {
  live?: string;
  previous?: string;
  canary?: { version: string; weight: number };
}

export function marksOfState(state: { live: string | null; previous: string | null; canary: { version: string; weight: number } | null }): VersionMarks {
  return {
    ...(state.live !== null ? { live: state.live } : {}),
    ...(state.previous !== null ? { previous: state.previous } : {}),
    ...(state.canary !== null ? { canary: state.canary } : {}),
  };
}
