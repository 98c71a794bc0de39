import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { UserError } from '../errors.js';

/**
 * `.depl/inventory.json` next to depl.yaml: what node-up made (a cache; node-up rebuilds it). Other
 * commands open the cluster from it without asking the provider.
 */
const inventorySchema = z.object({
  version: z.literal(1),
  app: z.string(),
  provider: z.enum(['local', 'openstack']),
  network: z.string(),
  nodes: z.array(z.object({
    name: z.string(),
    address: z.string(),
    role: z.enum(['manager', 'worker']),
    /** The swarm's id for the node: `docker node ls` rows are matched by it, not by hostname. */
    nodeId: z.string().optional(),
    /** The worker pool (provider.pools) of a pool node. */
    pool: z.string().optional(),
  })).min(1),
  updatedAt: z.string(),
});

export type Inventory = z.infer<typeof inventorySchema>;

/** depl.yaml's folder: every local file depl keeps is found from it. */
export interface ProjectFolder {
  root: string;
}

export function deplDir(loaded: ProjectFolder): string {
  return path.join(loaded.root, '.depl');
}

export function inventoryPath(loaded: ProjectFolder): string {
  return path.join(deplDir(loaded), 'inventory.json');
}

export function knownHostsPath(loaded: ProjectFolder): string {
  return path.join(deplDir(loaded), 'known_hosts');
}

export function ansibleInventoryPath(loaded: ProjectFolder): string {
  return path.join(loaded.root, 'ansible', 'generated_hosts.ini');
}

export async function readInventory(loaded: ProjectFolder): Promise<Inventory | null> {
  const file = inventoryPath(loaded);
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (text === null) return null;
  const parsed = inventorySchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new UserError(`${file} is not a depl inventory: ${parsed.error.issues[0]?.message ?? 'invalid'}`, "Delete it and run 'depl node-up' to write it again.", 'INVENTORY_INVALID');
  }
  return parsed.data;
}

export async function requireInventory(loaded: ProjectFolder): Promise<Inventory> {
  const inventory = await readInventory(loaded);
  if (!inventory) {
    throw new UserError(`no cluster yet: ${inventoryPath(loaded)} does not exist`, "Run 'depl node-up' first.", 'NO_CLUSTER');
  }
  return inventory;
}

/** Writes beside the file and renames over it; folders it makes are 0700 (only the operator's). */
export async function writeFileAtomicLocal(file: string, content: string, mode = 0o644): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.tmp-${process.pid}`;
  await writeFile(temp, content, { mode });
  await chmod(temp, mode);
  await rename(temp, file);
}

/** Files under .depl/ are the operator's own (keys, host keys, addresses): 0600, whatever the umask. */
export const DEPL_FILE_MODE = 0o600;

export async function writeInventory(loaded: ProjectFolder, inventory: Inventory): Promise<void> {
  await writeFileAtomicLocal(inventoryPath(loaded), JSON.stringify(inventory, null, 2) + '\n', DEPL_FILE_MODE);
}
