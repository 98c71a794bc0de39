import { createTwoFilesPatch } from 'diff';
import { renderRoutingTable } from './edge-routing.js';
import { edgeSettingsFor, renderNginxConfig, type NginxRenderOptions } from './nginx.js';
import type { Routing } from './release-state.js';

/**
 * What a change would write on the edge, as files: the routing table always (src/plan/edge-routing.ts), and
 * nginx.conf (settings, HTTPS server blocks and certificates) rendered from the same settings the applier
 * (src/apply/edge/config.ts) would load. `--dry-run` diffs each against what the edge has now.
 */
export interface EdgeFile {
  path: string;
  /** What is there now; null when there is no such file yet. */
  current: string | null;
  next: string;
}

export function plannedEdgeFiles(routing: Routing, render: NginxRenderOptions, paths: { routing: string; nginxConf: string }, current: { routing: string | null; nginxConf: string | null }): EdgeFile[] {
  return [
    { path: paths.routing, current: current.routing, next: renderRoutingTable(routing).text },
    { path: paths.nginxConf, current: current.nginxConf, next: renderNginxConfig(edgeSettingsFor(render, routing.app), render) },
  ];
}

/** Unified diffs (2 lines of context) of the files that would change, one after the other; '' when none would. */
export function edgeFilesDiff(files: readonly EdgeFile[], command: string): string {
  return files
    .filter((f) => f.current !== f.next)
    .map((f) => createTwoFilesPatch(f.current === null ? '/dev/null' : f.path, `${f.path} (after ${command})`, f.current ?? '', f.next, undefined, undefined, { context: 2 }))
    .join('');
}
