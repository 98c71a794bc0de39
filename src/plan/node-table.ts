import { formatTable } from './table.js';

/** The node table `status` and `node-up` print, from `docker node inspect` on the manager. */

export interface NodeTableRow {
  name: string;
  address: string;
  role: 'manager' | 'worker';
  /** Active, Pause, Drain */
  availability: string;
  /** Ready, Down, Unknown, Disconnected */
  state: string;
}

export const NODE_INSPECT_FORMAT = '{{.ID}} {{.Description.Hostname}} {{.Status.Addr}} {{.Spec.Role}} {{.Spec.Availability}} {{.Status.State}}';

export function nodeInspectCommand(ids: string[]): string[] {
  return ['docker', 'node', 'inspect', '--format', NODE_INSPECT_FORMAT, ...ids];
}

const capitalise = (s: string) => (s.length > 0 ? s[0]!.toUpperCase() + s.slice(1) : s);

/**
 * Rows in the inventory's order (known nodes by their swarm id), then any node the swarm has that the
 * inventory does not, under its hostname.
 */
export function nodeTableFromInspect(stdout: string, known: { name: string; nodeId?: string }[]): NodeTableRow[] {
  const parsed = stdout.split('\n').filter((l) => l.trim().length > 0).map((line) => {
    const [id = '', hostname = '', address = '', role = '', availability = '', state = ''] = line.trim().split(/\s+/);
    return { id, hostname, address, role: role === 'manager' ? 'manager' as const : 'worker' as const, availability: capitalise(availability), state: capitalise(state) };
  });
  const byId = new Map(parsed.map((p) => [p.id, p]));
  const rows: NodeTableRow[] = [];
  const used = new Set<string>();
  for (const node of known) {
    const match = (node.nodeId && byId.get(node.nodeId)) || parsed.find((p) => p.hostname === node.name && !used.has(p.id));
    if (!match) continue;
    used.add(match.id);
    rows.push({ name: node.name, address: match.address, role: match.role, availability: match.availability, state: match.state });
  }
  for (const p of parsed.filter((p) => !used.has(p.id))) {
    rows.push({ name: p.hostname, address: p.address, role: p.role, availability: p.availability, state: p.state });
  }
  return rows;
}

export function formatNodeTable(rows: NodeTableRow[]): string {
  return formatTable(['NAME', 'ADDRESS', 'ROLE', 'AVAILABILITY', 'STATE'], rows.map((r) => [r.name, r.address, r.role, r.availability, r.state]));
}
