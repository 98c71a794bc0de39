import { parse } from 'yaml';
import type { DeplConfig, OpenStackProviderConfig } from '../config/schema.js';
import { OperationError, UserError } from '../errors.js';

/** One entry of a Heat stack's `outputs`. */
export interface HeatOutput {
  output_key: string;
  output_value?: unknown;
  description?: string;
  output_error?: string;
}

/** Same shape as ProvisionedNode in src/apply/providers/types.ts (plan/ may not import apply/). */
export interface StackNode {
  name: string;
  address: string;
}

export { stackName } from './stack-name.js';

/** The Nova key pair depl uploads (its SSH key's public half) when provider.parameters.key_name is not set. */
export function managedKeyName(config: DeplConfig): string {
  return `depl-${config.app}`;
}

/** Does depl upload the key pair itself? Only when the user names none and the template takes a key_name. */
export function wantsManagedKey(provider: OpenStackProviderConfig, templateText: string): boolean {
  return !('key_name' in provider.parameters) && templateParameterNames(templateText).includes('key_name');
}

/** Names in the template's `parameters` section ([] when the text cannot be read: Heat's validate says why). */
export function templateParameterNames(templateText: string): string[] {
  try {
    const doc = parse(templateText) as { parameters?: Record<string, unknown> } | null;
    return Object.keys(doc?.parameters ?? {});
  } catch {
    return [];
  }
}

/**
 * Would an update change nothing? The same template document, and every template parameter at the value
 * it would get now (ours, else the template's default). Unsure answers are "no": an update is harmless.
 */
export function stackUpToDate(input: {
  templateText: string;
  storedTemplate: unknown;
  wanted: Record<string, string>;
  current: Record<string, string> | undefined;
  status: string;
}): boolean {
  // CHECK_COMPLETE: a stack check (openstack stack check, or node-up's for lost pool nodes) found everything there
  if (!/^(CREATE|UPDATE|CHECK)_COMPLETE$/.test(input.status)) return false;
  let doc: { parameters?: Record<string, { default?: unknown }> } | null;
  try {
    doc = parse(input.templateText) as typeof doc;
  } catch {
    return false;
  }
  if (!deepEqual(doc, input.storedTemplate)) return false;
  for (const [key, def] of Object.entries(doc?.parameters ?? {})) {
    const fallback = def?.default;
    const expected = input.wanted[key] ?? (fallback === undefined || fallback === null ? undefined : typeof fallback === 'object' ? JSON.stringify(fallback) : String(fallback));
    if (expected === undefined || input.current?.[key] !== expected) return false;
  }
  return true;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * Parameters the template gets (Heat wants every value as a string): `defaults` under the user's
 * provider.parameters, and the node count, which is always ours.
 */
export function stackParameters(provider: OpenStackProviderConfig, count: number, defaults: Record<string, string> = {}): Record<string, string> {
  if ('count' in provider.parameters) {
    throw new UserError('provider.parameters.count is set, but the node count comes from provider.nodes (or --nodes)', 'Remove provider.parameters.count.', 'CONFIG_INVALID');
  }
  const out: Record<string, string> = { ...defaults };
  for (const [key, value] of Object.entries(provider.parameters)) out[key] = String(value);
  out.count = String(count);
  return out;
}

/** Output keys of heat/stack.yaml that name the nodes; a custom template must provide the same two. */
export const NODE_NAMES_OUTPUT = 'node_names';
export const NODE_ADDRESSES_OUTPUT = 'node_addresses';

/** The nodes, first = manager, from the stack's outputs `node_names` and `node_addresses` (lists in the same order). */
export function nodesFromOutputs(stack: string, outputs: HeatOutput[] | undefined): StackNode[] {
  const byKey = new Map((outputs ?? []).map((o) => [o.output_key, o]));
  const list = (key: string): string[] => {
    const output = byKey.get(key);
    if (!output) {
      throw new OperationError(
        `stack ${stack} has no output "${key}" (it has: ${[...byKey.keys()].join(', ') || 'none'})`,
        `A custom template must output ${NODE_NAMES_OUTPUT} and ${NODE_ADDRESSES_OUTPUT} as lists, like heat/stack.yaml.`,
        'HEAT_OUTPUT_MISSING',
      );
    }
    if (output.output_error) throw new OperationError(`stack ${stack}: output "${key}" failed: ${output.output_error}`, undefined, 'HEAT_OUTPUT_ERROR');
    const value = output.output_value;
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' && v !== null)) {
      throw new OperationError(`stack ${stack}: output "${key}" is not a list of strings: ${JSON.stringify(value)}`, undefined, 'HEAT_OUTPUT_INVALID');
    }
    return value as string[];
  };
  const names = list(NODE_NAMES_OUTPUT);
  const addresses = list(NODE_ADDRESSES_OUTPUT);
  if (names.length !== addresses.length) {
    throw new OperationError(`stack ${stack}: ${names.length} node names but ${addresses.length} addresses`, undefined, 'HEAT_OUTPUT_INVALID');
  }
  return names.map((name, i) => {
    const address = addresses[i];
    if (!name || !address) throw new OperationError(`stack ${stack}: node ${i} has no ${name ? 'address' : 'name'} yet`, undefined, 'HEAT_OUTPUT_INVALID');
    return { name, address };
  });
}

/** A custom template's optional output naming the one address the app is reached at (a floating IP, a load balancer's VIP). */
export const ENTRY_ADDRESS_OUTPUT = 'entry_address';

/**
 * Where the app is reached, for its DNS records: the template's `entry_address` output when it has one (a
 * floating IP or load balancer in front of the nodes), else the first node's address: the manager, where the
 * edge runs (src/plan/bootstrap.ts labels it depl.edge).
 */
export function entryAddressFromOutputs(stack: string, outputs: HeatOutput[] | undefined): string {
  const entry = (outputs ?? []).find((o) => o.output_key === ENTRY_ADDRESS_OUTPUT);
  if (entry !== undefined) {
    if (entry.output_error) throw new OperationError(`stack ${stack}: output "${ENTRY_ADDRESS_OUTPUT}" failed: ${entry.output_error}`, undefined, 'HEAT_OUTPUT_ERROR');
    if (typeof entry.output_value !== 'string' || entry.output_value === '') {
      throw new OperationError(`stack ${stack}: output "${ENTRY_ADDRESS_OUTPUT}" is not an address: ${JSON.stringify(entry.output_value)}`, `A custom template's ${ENTRY_ADDRESS_OUTPUT} must be one address (a string), like get_attr: [floating_ip, floating_ip_address].`, 'HEAT_OUTPUT_INVALID');
    }
    return entry.output_value;
  }
  return nodesFromOutputs(stack, outputs)[0]!.address;
}
