import { UserError } from '../errors.js';
import { checkAppName, checkDnsLabel, checkDomainName, checkVersionLabel, type NameCheck } from '../names.js';
import type { Routing, RoutedVersion, Upstream } from './release-state.js';

/**
 * The routing table the edge reads at request time (see edge-lua.ts): which host goes to which installed
 * version, what is live on <domain>, the canary and its weight. A plain line format, so the Lua side parses
 * it without a JSON library and a torn file is recognisable (it must end with `end`):
 *
 *   depl-routing 1
 *   generation 3f9a01c2
 *   domain shop.example.org
 *   live v1
 *   canary v2 30
 *   version v1 http://shop-v1-api:8000
 *   end
 *
 * The generation is a hash of everything else: the edge reports the generation it serves, so depl knows
 * when a change is in effect, and writing the same routing twice is recognised as no change.
 */
export const ROUTING_FORMAT = 'depl-routing 1';

export interface RoutingTable {
  text: string;
  generation: string;
}

export function renderRoutingTable(state: Routing): RoutingTable {
  assertRouting(state);
  const body: string[] = [`domain ${state.domain}`];
  if (state.live !== undefined) body.push(`live ${state.live}`);
  const canary = activeCanary(state);
  if (canary !== undefined) body.push(`canary ${canary.version} ${formatWeight(canary.weight)}`);
  for (const version of state.versions) body.push(`version ${version.label} ${upstreamUrl(version.upstream)}`);
  const generation = fnv1a(body.join('\n'));
  return { generation, text: [ROUTING_FORMAT, `generation ${generation}`, ...body, 'end', ''].join('\n') };
}

/** What the edge answers at its probe path: the configuration it runs and the routing generation it serves. */
export interface EdgeReport {
  config: string;
  /** null while the edge has no valid routing table (none written yet, or a torn first one). */
  routing: string | null;
}

export function parseEdgeReport(body: string): EdgeReport {
  const [config = '', routing = 'none'] = body.trim().split(/\s+/);
  return { config, routing: routing === 'none' ? null : routing };
}

/** A canary that actually takes traffic: weight above 0 and a version other than live. */
export function activeCanary(state: Routing): { version: string; weight: number } | undefined {
  const canary = state.canary;
  if (canary === undefined || canary.weight <= 0 || canary.version === state.live) return undefined;
  return canary;
}

export function formatWeight(weight: number): string {
  return String(Number(weight.toFixed(2)));
}

function upstreamUrl(upstream: Upstream): string {
  return `http://${upstream.address ?? `${upstream.service}:${upstream.port}`}`;
}

export function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

const ADDRESS = /^([a-z0-9.-]+):(\d{1,5})$/;

/**
 * Names were validated when they entered depl; they are checked again here because the edge reads this table
 * word by word, and a name with a space or a newline in it would change what it means.
 */
export function assertRouting(state: Routing): void {
  must(checkAppName(state.app), `app name "${state.app}"`);
  must(checkDomainName(state.domain), `domain "${state.domain}"`);
  const labels = new Set<string>();
  for (const version of state.versions) {
    assertVersion(version);
    if (labels.has(version.label)) throw new UserError(`edge state lists version "${version.label}" twice`, undefined, 'ROUTING_INVALID');
    labels.add(version.label);
  }
  if (state.live !== undefined && !labels.has(state.live)) {
    throw new UserError(`live version "${state.live}" is not installed (installed: ${[...labels].join(', ') || 'none'})`, undefined, 'ROUTING_INVALID');
  }
  if (state.canary !== undefined) {
    const { version, weight } = state.canary;
    if (!labels.has(version)) throw new UserError(`canary version "${version}" is not installed (installed: ${[...labels].join(', ') || 'none'})`, undefined, 'ROUTING_INVALID');
    if (!Number.isFinite(weight) || weight < 0 || weight > 100) throw new UserError(`canary weight ${weight} is outside 0..100`, undefined, 'ROUTING_INVALID');
    if (weight > 0 && state.live === undefined) throw new UserError('a canary needs a live version to split traffic with; switch to a version first', undefined, 'ROUTING_INVALID');
  }
}

function assertVersion(version: RoutedVersion): void {
  must(checkVersionLabel(version.label), `version label "${version.label}"`);
  const { service, port, address } = version.upstream;
  must(checkDnsLabel(service), `upstream service "${service}" of version ${version.label}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UserError(`upstream port ${port} of version ${version.label} is not a port number`, undefined, 'ROUTING_INVALID');
  if (address !== undefined) {
    const match = ADDRESS.exec(address);
    const host = match?.[1];
    const addressPort = Number(match?.[2]);
    if (match === null || host === undefined || addressPort < 1 || addressPort > 65535 || !isHostOrIpv4(host)) {
      throw new UserError(`upstream address "${address}" of version ${version.label} is not host:port`, undefined, 'ROUTING_INVALID');
    }
  }
}

function isHostOrIpv4(host: string): boolean {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return host.split('.').every((octet) => Number(octet) <= 255);
  return checkDomainName(host).ok;
}

function must(check: NameCheck, what: string): void {
  if (!check.ok) throw new UserError(`${what} ${check.reason}`, undefined, 'ROUTING_INVALID');
}
