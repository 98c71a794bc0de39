import type { Reply } from './http.js';

/** A server Heat made (the emulator's servers live in its stacks). */
export interface StackServer {
  id: string;
  name: string;
  address: string;
  flavor: string;
}

/** What happens to the machine behind a server when Nova powers it off (shelve) or on again (unshelve). */
export interface ServerPower {
  /** The instance was shelved: its machine is off (a local node: its container stopped). */
  stopServer?(name: string): Promise<void>;
  /** The instance is being unshelved: its machine starts (with the disk it had). */
  startServer?(name: string): Promise<void>;
}

export interface ShelveBehaviour {
  /** How long each phase of a shelve or unshelve takes (default 20 ms): the task states are seen meanwhile. */
  serverActionMs?: number;
  /**
   * Nova's shelved_offload_time: 0 (default, as on Nectar) offloads at once, so a shelved server ends
   * SHELVED_OFFLOADED; -1 keeps it SHELVED (on the host) until a shelveOffload action.
   */
  shelvedOffloadTime?: 0 | -1;
}

interface Status {
  status: 'ACTIVE' | 'SHELVED' | 'SHELVED_OFFLOADED' | 'ERROR';
  taskState: string | null;
  updated: string;
  fault?: string;
}

const VM_STATE: Record<Status['status'], string> = { ACTIVE: 'active', SHELVED: 'shelved', SHELVED_OFFLOADED: 'shelved_offloaded', ERROR: 'error' };

const novaFault = (status: number, kind: string, message: string): Reply => ({ status, body: { [kind]: { code: status, message } } });

/**
 * Nova's servers of the Heat emulator's stacks, with the shelve family of server actions as Nova runs them:
 * 202 at once, then the work in the background with its task states (ACTIVE/shelving ->
 * shelving_image_uploading -> SHELVED -> shelving_offloading -> SHELVED_OFFLOADED; unshelving -> ACTIVE),
 * and 409 conflictingRequest for an action the server's state does not allow, worded as Nova words it.
 */
export class EmulatedServers {
  private readonly states = new Map<string, Status>();
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly servers: () => StackServer[],
    private readonly base: string,
    private readonly power: ServerPower,
    private readonly behaviour: ShelveBehaviour,
  ) {}

  private state(id: string): Status {
    let state = this.states.get(id);
    if (state === undefined) {
      state = { status: 'ACTIVE', taskState: null, updated: isoSeconds() };
      this.states.set(id, state);
    }
    return state;
  }

  /** The status of a server by name, for tests. */
  statusOf(name: string): { status: string; taskState: string | null } | undefined {
    const server = this.servers().find((s) => s.name === name);
    return server === undefined ? undefined : { status: this.state(server.id).status, taskState: this.state(server.id).taskState };
  }

  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** `parts`: the path below /v2.1 split, starting with `servers`. */
  handle(method: string, parts: string[], body: unknown): Reply {
    const [, id, sub] = parts;
    if (id === undefined || id === 'detail') {
      if (method !== 'GET') return novaFault(405, 'badMethod', 'Method not allowed');
      return { status: 200, body: { servers: this.servers().map((s) => (id === 'detail' ? this.doc(s) : { id: s.id, name: s.name, links: this.links(s) })) } };
    }
    const server = this.servers().find((s) => s.id === id);
    if (server === undefined) return novaFault(404, 'itemNotFound', `Instance ${id} could not be found.`);
    if (sub === undefined && method === 'GET') return { status: 200, body: { server: this.doc(server) } };
    if (sub === 'action' && method === 'POST') return this.action(server, body);
    return novaFault(404, 'itemNotFound', 'The resource could not be found.');
  }

  private links(s: StackServer) {
    return [{ rel: 'self', href: `${this.base}/compute/v2.1/servers/${s.id}` }];
  }

  private doc(s: StackServer) {
    const state = this.state(s.id);
    return {
      id: s.id,
      name: s.name,
      status: state.status,
      'OS-EXT-STS:task_state': state.taskState,
      'OS-EXT-STS:vm_state': VM_STATE[state.status],
      'OS-EXT-STS:power_state': state.status === 'ACTIVE' ? 1 : 4,
      updated: state.updated,
      flavor: { original_name: s.flavor },
      addresses: { public: [{ version: 4, addr: s.address, 'OS-EXT-IPS:type': 'fixed' }] },
      metadata: {},
      ...(state.fault !== undefined ? { fault: { code: 500, message: state.fault } } : {}),
      links: this.links(s),
    };
  }

  private action(server: StackServer, body: unknown): Reply {
    const keys = body !== null && typeof body === 'object' ? Object.keys(body) : [];
    if (keys.length !== 1) return novaFault(400, 'badRequest', 'Invalid input for field/attribute action. Value: ' + JSON.stringify(body));
    const action = keys[0]!;
    const state = this.state(server.id);
    const conflict = () => novaFault(409, 'conflictingRequest',
      `Cannot '${action}' instance ${server.id} while it is in ${state.taskState !== null ? `task_state ${state.taskState}` : `vm_state ${VM_STATE[state.status]}`}`);
    if (action === 'shelve') {
      if (state.taskState !== null || state.status !== 'ACTIVE') return conflict();
      this.run(server, state, ['shelving', 'shelving_image_pending_upload', 'shelving_image_uploading'], async () => {
        await this.power.stopServer?.(server.name);
        state.status = 'SHELVED';
        if ((this.behaviour.shelvedOffloadTime ?? 0) === 0) await this.offload(state);
      });
      return { status: 202 };
    }
    if (action === 'shelveOffload') {
      if (state.taskState !== null || state.status !== 'SHELVED') return conflict();
      this.run(server, state, [], () => this.offload(state));
      return { status: 202 };
    }
    if (action === 'unshelve') {
      // microversion 2.77 lets the body name an availability zone; null is the plain unshelve
      if (state.taskState !== null || (state.status !== 'SHELVED' && state.status !== 'SHELVED_OFFLOADED')) return conflict();
      this.run(server, state, state.status === 'SHELVED_OFFLOADED' ? ['unshelving', 'spawning'] : ['unshelving'], async () => {
        await this.power.startServer?.(server.name);
        state.status = 'ACTIVE';
      });
      return { status: 202 };
    }
    return novaFault(400, 'badRequest', `There is no such action: ${action}`);
  }

  private async offload(state: Status): Promise<void> {
    this.setTask(state, 'shelving_offloading');
    await this.pause();
    state.status = 'SHELVED_OFFLOADED';
  }

  private setTask(state: Status, task: string | null): void {
    state.taskState = task;
    state.updated = isoSeconds();
  }

  /** The action's task states one after the other, then its work; the task state clears when it is done. */
  private run(server: StackServer, state: Status, tasks: string[], work: () => Promise<void>): void {
    this.setTask(state, tasks[0] ?? 'working');
    const p = (async () => {
      for (const task of tasks) {
        this.setTask(state, task);
        await this.pause();
      }
      try {
        await work();
      } finally {
        this.setTask(state, null);
      }
    })().catch((error: Error) => {
      // a machine that could not be stopped or started leaves the server in ERROR, with the fault, as Nova does
      state.status = 'ERROR';
      state.fault = `${server.name}: ${error.message}`;
    });
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private pause(): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, this.behaviour.serverActionMs ?? 20));
  }
}

function isoSeconds(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
