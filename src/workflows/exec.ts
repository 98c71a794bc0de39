import { nodeEngine } from '../apply/docker.js';
import { execInContainer, type ExecIo } from '../apply/exec.js';
import { serviceTasks } from '../apply/swarm.js';
import { OperationError, UserError } from '../errors.js';
import { pickExecTask, planExec } from '../plan/jobs.js';
import type { Logger } from '../util/log.js';
import { resolveVersionService } from './run.js';
import type { ClusterAccess } from './command-inputs.js';
import { withManagerEngine } from './versions.js';

export interface ExecOptions {
  service: string;
  /** Default: the live version. */
  version?: string;
  command: string[];
  /** Interactive: a TTY in the container, fed by the operator's terminal in raw mode. */
  tty: boolean;
  term?: string;
}

/**
 * depl exec: the command in one running task of the version's service, in that task's container, through the
 * Engine API of the node the task runs on (over SSH, as every node is reached). Returns its exit code.
 */
export async function execInService(access: Pick<ClusterAccess, 'app' | 'open'>, options: ExecOptions, log: Logger, io: ExecIo): Promise<{ exitCode: number; task: string; node: string }> {
  const { app } = access;
  const request = planExec(options.command, options.tty, options.term);
  return withManagerEngine(access, log, async (cluster, manager) => {
    const { version, service } = await resolveVersionService(cluster, manager, app, { service: options.service, version: options.version, verb: 'exec' });
    const task = pickExecTask(await serviceTasks(manager, service.id));
    if (task === null) {
      throw new OperationError(`no task of ${service.name} is running`, `See its tasks with \`depl status\` and \`depl logs ${options.service} --version ${version}\`.`, 'NO_RUNNING_TASK');
    }
    const swarmNode = await manager.docker.getNode(task.nodeId).inspect().catch((error: Error) => {
      throw new OperationError(`cannot inspect the node of task ${task.id}: ${error.message}`, undefined, 'SWARM_API', { cause: error });
    }) as { Spec?: { Labels?: Record<string, string> }; Description?: { Hostname?: string } };
    // node-up labels every swarm node with its inventory name
    const name = swarmNode.Spec?.Labels?.['depl.node'] ?? swarmNode.Description?.Hostname;
    const node = cluster.nodes.find((n) => n.name === name);
    if (node === undefined) {
      throw new UserError(`task ${task.id} runs on node "${name ?? task.nodeId}", which is not in this cluster's inventory`, "Run 'depl node-up' to bring the inventory up to date.", 'NO_SUCH_NODE');
    }
    log.debug(`exec in ${service.name} task ${task.slot}.${task.id.slice(0, 5)} on ${node.name}: ${options.command.join(' ')}`);
    const engine = await nodeEngine(cluster, node);
    try {
      const exitCode = await execInContainer(engine, task.containerId, request, io);
      return { exitCode, task: `${task.slot}.${task.id.slice(0, 5)}`, node: node.name };
    } finally {
      await engine.close();
    }
  });
}
