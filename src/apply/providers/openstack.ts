import type { Dispatcher } from 'undici';
import { resolveCloudCredentials } from '../../config/clouds.js';
import { OperationError, UserError } from '../../errors.js';
import type { OpenStackProviderConfig } from '../../config/schema.js';
import { entryAddressFromOutputs, nodesFromOutputs, stackParameters, stackUpToDate, wantsManagedKey } from '../../plan/heat.js';
import type { Logger } from '../../util/log.js';
import { HeatClient, trustRefusal, type HeatStack, type StackInput, type StackRef } from '../openstack/heat.js';
import { dispatcherFor, OpenStackApiError } from '../openstack/http.js';
import { KeystoneSession } from '../openstack/keystone.js';
import { ensureManagedKeypair } from '../openstack/keypair.js';
import { NovaClient, type NovaServer } from '../openstack/nova.js';
import type { CloudServer } from '../../plan/hibernation.js';
import { keystoneObjectStore } from '../openstack/swift.js';
import { readTemplate } from '../openstack/template.js';
import { readQuotas } from '../openstack/quota.js';
import { addedDemand, checkQuota, flavorDemand, mergeDemand, quotaLines, quotaRefusal, quotaUsageLines, templateDemand, type QuotaCheck } from '../../plan/allocation.js';
import { budgetOutlook, suCost, suLines, suRates, type BudgetOutlook, type SuCost } from '../../plan/service-units.js';
import { planPoolRecovery, poolCounts, poolNamesOutput, poolNodesFromOutputs, poolParameters, withPools } from '../../plan/pools.js';
import type { PoolCounts, Provider, ProvisionedNode, ProvisionPlan } from './types.js';

export interface OpenStackProviderOptions {
  /** May a missing password be asked for? Default: stdin and stderr are TTYs and --yes was not given. */
  interactive?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** First interval between polls of a stack in progress (doubles up to 5 s). */
  pollMs?: number;
  dispatcher?: Dispatcher;
}

/**
 * Nodes from a Heat stack: `up` creates the stack or updates it in place to the new node count, waits
 * while showing its events, and reads the nodes from its outputs; `down` deletes it and waits.
 * Credentials are resolved here, so a missing cloud or password fails before anything is changed.
 */
/** What the OpenStack provider is made from (src/workflows/adapter-slices.ts). */
export interface OpenStackProviderSettings {
  provider: OpenStackProviderConfig;
  /** depl.yaml's folder: the template and clouds.yaml are found from it. */
  root: string;
  stack: string;
  /** The key pair depl uploads when the template takes one: its name, the private key's file, ssh.key as written. */
  key: { name: string; file: string; configured: string };
}

export async function createOpenStackProvider(settings: OpenStackProviderSettings, log: Logger, options: OpenStackProviderOptions = {}): Promise<Provider> {
  const { provider } = settings;
  const session = await openstackSession(settings, { cloud: provider.cloud, region: provider.region }, options, log);
  log.debug(`OpenStack credentials: ${session.credentials.source}`);
  const heat = new HeatClient(session, { dispatcher: options.dispatcher });
  const nova = new NovaClient(session, { dispatcher: options.dispatcher });
  const name = settings.stack;
  const timeoutMs = provider.timeoutMinutes * 60_000;
  const wait = { timeoutMs, log, pollMs: options.pollMs };

  /** The template and its parameters, checked by Heat itself before anything is made. */
  async function stackInput(count: number, inputLog: Logger, uploadKey: boolean, pools: PoolCounts = {}): Promise<StackInput> {
    // the pools' server groups are added to the template (src/plan/pools.ts), with their counts and flavors as parameters
    const template = withPools(await readTemplate(settings.root, provider.template), provider.pools);
    let keyName: string | undefined;
    if (wantsManagedKey(provider, template)) keyName = uploadKey ? await ensureManagedKeypair(nova, settings.key, inputLog) : settings.key.name;
    const parameters = { ...stackParameters(provider, count, keyName ? { key_name: keyName } : {}), ...poolParameters(provider.pools, pools) };
    if (uploadKey) await heat.validate(template, parameters);
    return { template, parameters, timeoutMinutes: provider.timeoutMinutes };
  }

  /**
   * Heat's 403 on a create/update made with an application credential is the trust refusal: say so.
   * A 400 is Heat's full check of the template (which, unlike /validate, looks inside a ResourceGroup's
   * resource_def) refusing it before anything is made: the user's to fix.
   */
  async function refusedTrust<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof OpenStackApiError && error.status === 400) {
        throw new UserError(`Heat rejected the template or its parameters: ${error.apiText}`, 'Check provider.template and provider.parameters in depl.yaml.', 'HEAT_TEMPLATE_INVALID', { cause: error });
      }
      throw trustRefusal(error, session.credentials.auth.type, name) ?? error;
    }
  }

  /**
   * A stack an earlier run left IN_PROGRESS (it lost contact, or stopped waiting) is waited for, not
   * refused: Heat is still working on it. Undefined when the wait ended with the stack deleted.
   */
  async function settled(ref: StackRef, settleLog: Logger): Promise<StackRef | undefined> {
    const stack: HeatStack = await heat.show(ref);
    const action = /^(CREATE|UPDATE|DELETE)_IN_PROGRESS$/.exec(stack.stack_status)?.[1] as 'CREATE' | 'UPDATE' | 'DELETE' | undefined;
    if (action === undefined) {
      if (stack.stack_status.endsWith('_IN_PROGRESS')) {
        throw new OperationError(`stack ${name} is busy (${stack.stack_status})`, 'Wait until it finishes (openstack stack show), then run again.', 'HEAT_STACK_BUSY');
      }
      return ref;
    }
    settleLog.step(`stack ${name} is still ${stack.stack_status} from an earlier run: waiting for it`);
    const marker = await heat.lastEventId(ref);
    const done = await heat.waitFor(ref, { ...wait, log: settleLog, action, marker, resumed: true });
    return action === 'DELETE' || done === undefined ? undefined : ref;
  }

  /**
   * The allocation check of a plan, before anything is made: what `count` nodes need beyond what the stack
   * holds now, against the quotas the cloud reports, and what the cluster as planned costs in SUs.
   */
  async function allocationFor(input: StackInput, existing: StackRef | undefined): Promise<AllocationReport> {
    const wanted = templateDemand(input.template, input.parameters);
    let held = { demand: {}, servers: {} as Record<string, number> };
    if (existing !== undefined) {
      const current = await heat.show(existing);
      if (!current.stack_status.startsWith('DELETE_')) held = templateDemand(JSON.stringify(await heat.template(existing)), current.parameters ?? {});
    }
    const flavors = await nova.flavors();
    const wantedSize = flavorDemand(wanted.servers, flavors);
    if (wantedSize.unknown.length > 0) {
      throw new UserError(
        `no flavor named ${wantedSize.unknown.join(', ')} in this project (have: ${flavors.map((f) => f.name).sort().join(', ') || 'none'})`,
        'Set provider.parameters.flavor to one of those (openstack flavor list).',
        'FLAVOR_NOT_FOUND',
      );
    }
    const heldSize = flavorDemand(held.servers, flavors);
    const added = addedDemand(mergeDemand(wanted.demand, wantedSize.demand), mergeDemand(held.demand, heldSize.demand));
    const answers = await readQuotas(session, nova, { volumes: (wanted.demand.volumes ?? 0) > 0, loadBalancers: (wanted.demand.loadbalancer ?? 0) > 0 });
    const quota = checkQuota(answers, added);
    const cost = suCost(wanted.servers, suRates(provider.serviceUnits.rates));
    const budget = provider.allocation ?? {};
    const now = Date.now();
    const lines = [...quotaLines(quota), ...wanted.notes.map((n) => `  not counted: ${n}`), ...suLines(cost, budget, now)];
    return { quota, serviceUnits: cost, budget: budgetOutlook(cost, budget, now), lines };
  }

  /** The cluster's stack and its reference; undefined when there is none, or it is being (or was just) deleted, as Heat may still find it by name for a moment. */
  async function existingStack(): Promise<{ ref: StackRef; stack: HeatStack } | undefined> {
    const ref = await heat.find(name);
    if (ref === undefined) return undefined;
    const stack = await heat.show(ref);
    return stack.stack_status.startsWith('DELETE_') ? undefined : { ref, stack };
  }

  /** `depl status`: the stack as it is, what the project uses of its quotas, and what the cluster costs. */
  async function currentAllocation(): Promise<AllocationReport | undefined> {
    const found = await existingStack();
    if (found === undefined) return undefined;
    const { ref, stack: current } = found;
    const held = templateDemand(JSON.stringify(await heat.template(ref)), current.parameters ?? {});
    const answers = await readQuotas(session, nova, { volumes: (held.demand.volumes ?? 0) > 0, loadBalancers: (held.demand.loadbalancer ?? 0) > 0 });
    const quota = checkQuota(answers, {});
    const cost = suCost(held.servers, suRates(provider.serviceUnits.rates));
    const budget = provider.allocation ?? {};
    const now = Date.now();
    return { quota, serviceUnits: cost, budget: budgetOutlook(cost, budget, now), lines: [...quotaUsageLines(quota), ...suLines(cost, budget, now)] };
  }

  /** A plan over quota is refused with every resource and its numbers: Heat would fail halfway, after minutes. */
  function refuseOverQuota(report: AllocationReport): void {
    const refusal = quotaRefusal(report.quota);
    if (refusal) throw new UserError(refusal.message, refusal.hint, 'QUOTA_EXCEEDED');
  }

  /** The cluster's nodes, then the pools' (those whose server is gone are left out: they are not there). */
  async function nodesOf(ref: StackRef): Promise<ProvisionedNode[]> {
    const stack = await heat.show(ref);
    return [...nodesFromOutputs(name, stack.outputs), ...poolNodesFromOutputs(name, provider.pools, stack.outputs).nodes];
  }

  /** Pool nodes the stack lists whose server the cloud deleted (a preempted instance). */
  async function lostPoolNodes(ref: StackRef): Promise<Array<{ pool: string; name: string }>> {
    if (Object.keys(provider.pools).length === 0) return [];
    const stack = await heat.show(ref);
    // a stack made before a pool was added has no outputs for it yet: nothing of it can be lost
    const known = Object.fromEntries(Object.entries(provider.pools).filter(([pool]) => (stack.outputs ?? []).some((o) => o.output_key === poolNamesOutput(pool))));
    return poolNodesFromOutputs(name, known, stack.outputs).lost;
  }

  /** The stack's pool counts now (its parameters), or undefined when there is no stack. */
  async function currentPoolParameters(): Promise<Record<string, string> | undefined> {
    const ref = await heat.find(name);
    if (ref === undefined) return undefined;
    const stack = await heat.show(ref);
    return stack.stack_status.startsWith('DELETE_') ? undefined : stack.parameters;
  }

  return {
    kind: 'openstack',

    async poolCounts(requested: PoolCounts): Promise<PoolCounts> {
      return poolCounts(provider.pools, Object.keys(provider.pools).length > 0 ? await currentPoolParameters() : undefined, requested);
    },

    async up(count: number, upLog: Logger, pools: PoolCounts = {}): Promise<ProvisionedNode[]> {
      // the quota check comes before the key pair upload: a plan that does not fit changes nothing
      const report = await allocationFor(await stackInput(count, upLog, false, pools), await heat.find(name));
      refuseOverQuota(report);
      for (const line of report.lines) upLog.info(line);
      const input = await stackInput(count, upLog, true, pools);
      let existing = await heat.find(name);
      if (existing !== undefined) existing = await settled(existing, upLog);
      if (existing === undefined) {
        upLog.step(`creating Heat stack ${name} with ${count} node${count === 1 ? '' : 's'}`);
        const ref = await refusedTrust(() => heat.create(name, input));
        await heat.waitFor(ref, { ...wait, log: upLog, action: 'CREATE' });
        return (await nodesOf(ref)).map((node) => ({ ...node, fresh: true }));
      }
      const before = await nodesOf(existing).catch(() => [] as ProvisionedNode[]);
      // pool nodes the cloud deleted: Heat's check marks them, and the update below replaces them
      const recovery = planPoolRecovery(name, await lostPoolNodes(existing));
      for (const note of recovery.notes) upLog.warn(note);
      for (const step of recovery.steps) {
        if (step.kind !== 'check-stack') continue;
        upLog.step(step.describe);
        const checked = await heat.check(existing, { ...wait, log: upLog });
        if (checked.status === 'CHECK_COMPLETE') upLog.warn(`stack ${name}: Heat's check found every server; the update goes ahead all the same`);
      }
      const current = await heat.show(existing);
      if (recovery.steps.length === 0 && stackUpToDate({ templateText: input.template, storedTemplate: await heat.template(existing), wanted: input.parameters, current: current.parameters, status: current.stack_status })) {
        upLog.step(`Heat stack ${name} already has ${count} node${count === 1 ? '' : 's'} from this template: no update`);
        return (await nodesOf(existing)).map((node) => ({ ...node, fresh: false }));
      }
      const marker = await heat.lastEventId(existing);
      upLog.step(recovery.steps.find((s) => s.kind === 'replace-lost')?.describe ?? `updating Heat stack ${name} to ${count} node${count === 1 ? '' : 's'} (was ${current.parameters?.count ?? '?'})`);
      await refusedTrust(() => heat.update(existing, input));
      await heat.waitFor(existing, { ...wait, log: upLog, action: 'UPDATE', marker });
      // a server Heat added or replaced is a new machine with new host keys
      // a replaced pool node (it was lost) is a new machine, whatever address it got
      const replaced = new Set(recovery.steps.flatMap((s) => (s.kind === 'replace-lost' ? s.nodes : [])));
      return (await nodesOf(existing)).map((node) => ({ ...node, fresh: replaced.has(node.name) || !before.some((b) => b.name === node.name && b.address === node.address) }));
    },

    async plan(count: number, planLog: Logger, pools: PoolCounts = {}): Promise<ProvisionPlan> {
      // a plan uploads nothing: the managed key pair's name is what up() would use
      const input = await stackInput(count, planLog, false, pools);
      const allocation = await allocationFor(input, await heat.find(name));
      refuseOverQuota(allocation);
      const withAllocation = (plan: ProvisionPlan): ProvisionPlan => ({ ...plan, lines: [...plan.lines, ...allocation.lines], allocation });
      // Heat checks key_name against Nova's key pairs, so its preview cannot run before depl's own is uploaded
      const keyName = wantsManagedKey(provider, input.template) ? input.parameters.key_name : undefined;
      if (keyName !== undefined && (await nova.keypair(keyName)) === undefined) {
        return withAllocation({
          action: 'create',
          lines: [
            `node-up would first upload key pair ${keyName} (the public half of ${settings.key.configured}.pub), then create stack ${name} with ${count} node${count === 1 ? '' : 's'}`,
            "Heat's preview needs that key pair to exist; run 'depl node-up' (or set provider.parameters.key_name) to see it",
          ],
          resources: { keypairs: [keyName] },
        });
      }
      const existing = await heat.find(name);
      if (existing === undefined) {
        const resources = await refusedTrust(() => heat.previewCreate(name, input));
        const byType = resources.map((r) => `${r.resource_name} (${r.resource_type ?? '?'})`);
        return withAllocation({
          action: 'create',
          lines: [`Heat would create stack ${name} with ${count} node${count === 1 ? '' : 's'}:`, ...byType.map((r) => `  + ${r}`)],
          resources: { added: byType },
        });
      }
      const current = await heat.show(existing);
      if (current.stack_status.endsWith('_IN_PROGRESS')) {
        return withAllocation({ action: 'none', lines: [`stack ${name} is ${current.stack_status}: node-up would wait for it, then plan again`], resources: {} });
      }
      const recovery = planPoolRecovery(name, await lostPoolNodes(existing));
      const recoveryLines = [...recovery.notes, ...recovery.steps.map((step, i) => `  ${i + 1}. ${step.describe}`)];
      const changes = await refusedTrust(() => heat.previewUpdate(existing, input));
      const names = (list: Array<{ resource_name: string; resource_type?: string }>) => list.map((r) => `${r.resource_name} (${r.resource_type ?? '?'})`);
      const resources = { added: names(changes.added), deleted: names(changes.deleted), replaced: names(changes.replaced), updated: names(changes.updated), unchanged: names(changes.unchanged) };
      const changed = resources.added.length + resources.deleted.length + resources.replaced.length + resources.updated.length;
      const lines = changed === 0
        ? [`Heat stack ${name} (${current.stack_status}, ${current.parameters?.count ?? '?'} nodes) would not change`]
        : [
            `Heat would update stack ${name} from ${current.parameters?.count ?? '?'} to ${count} node${count === 1 ? '' : 's'}:`,
            ...resources.added.map((r) => `  + ${r}`),
            ...resources.replaced.map((r) => `  ± ${r} (replaced)`),
            ...resources.updated.map((r) => `  ~ ${r}`),
            ...resources.deleted.map((r) => `  - ${r}`),
          ];
      return withAllocation({
        action: changed === 0 && recovery.steps.length === 0 ? 'none' : 'update',
        lines: [...lines, ...recoveryLines],
        resources: { ...resources, ...(recovery.steps.length > 0 ? { lost: recovery.notes.length > 0 ? (recovery.steps.find((st) => st.kind === 'replace-lost') as { nodes: string[] }).nodes : [] } : {}) },
        ...(recovery.steps.length > 0 ? { recovery } : {}),
      });
    },

    allocation: currentAllocation,

    async entryAddress(): Promise<string | undefined> {
      const found = await existingStack();
      return found === undefined ? undefined : entryAddressFromOutputs(name, found.stack.outputs);
    },

    objectStore: () => keystoneObjectStore(session),

    servers: {
      instances: 'nova',
      async list() {
        const found = await existingStack();
        return found === undefined ? [] : stackServers(nodesFromOutputs(name, found.stack.outputs), await nova.servers());
      },
      shelve: (server) => nova.serverAction(server.id, server.name, 'shelve'),
      unshelve: (server) => nova.serverAction(server.id, server.name, 'unshelve'),
    },

    async list(listLog: Logger): Promise<ProvisionedNode[]> {
      const found = await existingStack();
      if (found === undefined) return [];
      const { stack } = found;
      try {
        // the pools' nodes too (node-down lists what it removes); a pool added since the stack was made has no outputs yet
        const made = Object.fromEntries(Object.entries(provider.pools).filter(([pool]) => (stack.outputs ?? []).some((o) => o.output_key === poolNamesOutput(pool))));
        return [...nodesFromOutputs(name, stack.outputs), ...poolNodesFromOutputs(name, made, stack.outputs).nodes];
      } catch (error) {
        // a failed or half-made stack still has to be listable, so that node-down can remove it
        if (stack.stack_status.endsWith('_COMPLETE')) throw error;
        listLog.warn(`stack ${name} is ${stack.stack_status}; its nodes cannot be read: ${(error as Error).message}`);
        return [];
      }
    },

    async down(downLog: Logger): Promise<void> {
      const ref = await heat.find(name);
      if (ref === undefined) {
        downLog.info(`no Heat stack named ${name}: nothing to delete`);
        return;
      }
      const marker = await heat.lastEventId(ref);
      downLog.step(`deleting Heat stack ${name}`);
      await heat.delete(ref);
      await heat.waitFor(ref, { ...wait, log: downLog, action: 'DELETE', marker });
    },
  };
}

/**
 * The stack's nodes (its outputs: names and addresses) as Nova's servers, in node order. Names are not
 * unique in a project, so a name Nova lists twice is told apart by the node's address.
 */
export function stackServers(nodes: ProvisionedNode[], servers: NovaServer[]): CloudServer[] {
  return nodes.map((node) => {
    const named = servers.filter((s) => s.name === node.name);
    const match = named.length <= 1 ? named[0] : named.find((s) => Object.values(s.addresses ?? {}).some((list) => list.some((a) => a.addr === node.address)));
    if (match === undefined) {
      throw new OperationError(`Nova lists no server ${node.name} (${node.address}) of the stack${named.length > 1 ? ` that has that address (${named.length} servers have that name)` : ''}`,
        'See openstack server list; depl node-up makes the stack whole again.', 'SERVER_STATE');
    }
    return { id: match.id, name: match.name, status: match.status, taskState: match['OS-EXT-STS:task_state'] ?? null };
  });
}

/** The allocation part of a plan: quota headroom and SU cost (also in --json). */
export interface AllocationReport {
  quota: QuotaCheck;
  serviceUnits: SuCost;
  budget: BudgetOutlook;
  lines: string[];
}

/**
 * One Keystone session per cloud in this process: node-down builds the provider more than once, and a
 * password typed at the prompt, like the token, must serve all of them.
 */
const sessions = new Map<string, Promise<KeystoneSession>>();

/** The Keystone session for a cloud of clouds.yaml (the provider's, or tls.dnsCloud's), shared in this process. */
export async function openstackSession(
  project: { root: string },
  cloud: { cloud?: string; region?: string },
  options: OpenStackProviderOptions,
  log?: Logger,
): Promise<KeystoneSession> {
  const key = JSON.stringify([cloud.cloud, cloud.region, project.root, options.cwd, options.env ?? null]);
  let session = sessions.get(key);
  if (!session) {
    session = resolveCloudCredentials({
      cloud: cloud.cloud,
      region: cloud.region,
      env: options.env,
      cwd: options.cwd,
      configRoot: project.root,
      interactive: options.interactive ?? defaultInteractive(),
    }).then(async (credentials) => {
      if (/^http:/i.test(credentials.authUrl)) {
        log?.warn(`the Keystone auth URL ${credentials.authUrl} is plain http: passwords and tokens cross the network unencrypted; use its https:// address`);
      }
      return new KeystoneSession(credentials, { dispatcher: options.dispatcher ?? (await dispatcherFor(credentials)) });
    });
    sessions.set(key, session);
    session.catch(() => sessions.delete(key));
  }
  return session;
}

/**
 * Callers that know (the CLI context) pass `interactive`; this fallback keeps a provider made without it
 * from prompting under --yes or without a terminal.
 */
function defaultInteractive(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY) && !process.argv.includes('--yes');
}
