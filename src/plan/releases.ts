import type { EdgeState } from './edge-state.js';
import { LABELS } from './services.js';

/**
 * Installed versions are read back from the swarm itself (service labels), so two operators see the same
 * list. These functions turn that listing into versions, edge state and prune decisions.
 */
export interface ServiceSummary {
  name: string;
  labels: Record<string, string>;
  /** ISO time the service was created. */
  createdAt: string;
  replicas: number;
}

export interface InstalledVersion {
  label: string;
  createdAt: string;
  branch?: string;
  services: string[];
  /** The service reached through the edge, if the version has one. */
  http?: { service: string; port: number; health?: string };
}

/** Live, canary and previous, as recorded on the cluster by switch/canary. */
export interface VersionMarks {
  live?: string;
  previous?: string;
  canary?: { version: string; weight: number };
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

/** What the edge should serve: every installed version with an http service, plus live and canary. */
export function edgeStateFor(app: string, domain: string, versions: InstalledVersion[], marks: VersionMarks): EdgeState {
  const served = versions.filter((v) => v.http !== undefined);
  const known = new Set(served.map((v) => v.label));
  return {
    app,
    domain,
    versions: served.map((v) => ({ label: v.label, upstream: { service: v.http!.service, port: v.http!.port } })),
    ...(marks.live !== undefined && known.has(marks.live) ? { live: marks.live } : {}),
    ...(marks.canary !== undefined && known.has(marks.canary.version) ? { canary: { ...marks.canary } } : {}),
  };
}

export interface PrunePlan {
  remove: InstalledVersion[];
  keep: { label: string; why: 'live' | 'canary' | 'previous' | 'recent' }[];
}

/** Keeps live, canary and previous always, plus the `keep` newest others; removes the rest, oldest first. */
export function planPrune(versions: InstalledVersion[], marks: VersionMarks, keep: number): PrunePlan {
  const protectedWhy = new Map<string, 'live' | 'canary' | 'previous'>();
  if (marks.previous !== undefined) protectedWhy.set(marks.previous, 'previous');
  if (marks.canary !== undefined) protectedWhy.set(marks.canary.version, 'canary');
  if (marks.live !== undefined) protectedWhy.set(marks.live, 'live');
  const others = versions.filter((v) => !protectedWhy.has(v.label));
  const newestFirst = [...others].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const recent = new Set(newestFirst.slice(0, Math.max(0, keep)).map((v) => v.label));
  const result: PrunePlan = { remove: [], keep: [] };
  for (const v of versions) {
    const why = protectedWhy.get(v.label);
    if (why) result.keep.push({ label: v.label, why });
    else if (recent.has(v.label)) result.keep.push({ label: v.label, why: 'recent' });
    else result.remove.push(v);
  }
  return result;
}
