import type { Dispatcher } from 'undici';
import { resolveCloudCredentials } from '../../config/clouds.js';
import type { LoadedConfig } from '../../config/load.js';
import { OperationError } from '../../errors.js';
import type { OpenStackProviderConfig } from '../../config/schema.js';
import { nodesFromOutputs, stackName, stackParameters, stackUpToDate, wantsManagedKey } from '../../plan/heat.js';
import type { Logger } from '../../util/log.js';
import { HeatClient, type StackRef } from '../openstack/heat.js';
import { dispatcherFor } from '../openstack/http.js';
import { KeystoneSession } from '../openstack/keystone.js';
import { ensureManagedKeypair } from '../openstack/keypair.js';
import { NovaClient } from '../openstack/nova.js';
import { readTemplate } from '../openstack/template.js';
import type { Provider, ProvisionedNode } from './types.js';

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
export async function createOpenStackProvider(loaded: LoadedConfig, log: Logger, options: OpenStackProviderOptions = {}): Promise<Provider> {
  const provider = loaded.config.provider;
  if (provider.type !== 'openstack') throw new Error(`createOpenStackProvider called for a ${provider.type} provider`);
  const session = await sessionFor(loaded, options, log);
  log.debug(`OpenStack credentials: ${session.credentials.source}`);
  const heat = new HeatClient(session, { dispatcher: options.dispatcher });
  const nova = new NovaClient(session, { dispatcher: options.dispatcher });
  const name = stackName(loaded.config);
  const timeoutMs = provider.timeoutMinutes * 60_000;
  const wait = { timeoutMs, log, pollMs: options.pollMs };

  async function nodesOf(ref: StackRef): Promise<ProvisionedNode[]> {
    const stack = await heat.show(ref);
    return nodesFromOutputs(name, stack.outputs);
  }

  return {
    kind: 'openstack',

    async up(count: number, upLog: Logger): Promise<ProvisionedNode[]> {
      const template = await readTemplate(loaded.root, provider.template);
      const keyName = wantsManagedKey(provider, template) ? await ensureManagedKeypair(nova, loaded, upLog) : undefined;
      const parameters = stackParameters(provider, count, keyName ? { key_name: keyName } : {});
      await heat.validate(template, parameters);
      const existing = await heat.find(name);
      if (existing === undefined) {
        upLog.step(`creating Heat stack ${name} with ${count} node${count === 1 ? '' : 's'}`);
        const ref = await heat.create(name, { template, parameters, timeoutMinutes: provider.timeoutMinutes });
        await heat.waitFor(ref, { ...wait, log: upLog, action: 'CREATE' });
        return (await nodesOf(ref)).map((node) => ({ ...node, fresh: true }));
      }
      const current = await heat.show(existing);
      if (current.stack_status.endsWith('_IN_PROGRESS')) {
        throw new OperationError(`stack ${name} is busy (${current.stack_status})`, 'Wait until it finishes (openstack stack show), then run again.', 'HEAT_STACK_BUSY');
      }
      const before = await nodesOf(existing).catch(() => [] as ProvisionedNode[]);
      if (stackUpToDate({ templateText: template, storedTemplate: await heat.template(existing), wanted: parameters, current: current.parameters, status: current.stack_status })) {
        upLog.step(`Heat stack ${name} already has ${count} node${count === 1 ? '' : 's'} from this template: no update`);
        return (await nodesOf(existing)).map((node) => ({ ...node, fresh: false }));
      }
      const marker = await heat.lastEventId(existing);
      upLog.step(`updating Heat stack ${name} to ${count} node${count === 1 ? '' : 's'} (was ${current.parameters?.count ?? '?'})`);
      await heat.update(existing, { template, parameters, timeoutMinutes: provider.timeoutMinutes });
      await heat.waitFor(existing, { ...wait, log: upLog, action: 'UPDATE', marker });
      // a server Heat added or replaced is a new machine with new host keys
      return (await nodesOf(existing)).map((node) => ({ ...node, fresh: !before.some((b) => b.name === node.name && b.address === node.address) }));
    },

    async list(listLog: Logger): Promise<ProvisionedNode[]> {
      const ref = await heat.find(name);
      if (ref === undefined) return [];
      const stack = await heat.show(ref);
      try {
        return nodesFromOutputs(name, stack.outputs);
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
 * One Keystone session per cloud in this process: node-down builds the provider more than once, and a
 * password typed at the prompt, like the token, must serve all of them.
 */
const sessions = new Map<string, Promise<KeystoneSession>>();

async function sessionFor(loaded: LoadedConfig, options: OpenStackProviderOptions, log?: Logger): Promise<KeystoneSession> {
  const provider = loaded.config.provider as OpenStackProviderConfig;
  return openstackSession(loaded, { cloud: provider.cloud, region: provider.region }, options, log);
}

/** The Keystone session for a cloud of clouds.yaml (the provider's, or tls.dnsCloud's), shared in this process. */
export async function openstackSession(
  loaded: LoadedConfig,
  cloud: { cloud?: string; region?: string },
  options: OpenStackProviderOptions,
  log?: Logger,
): Promise<KeystoneSession> {
  const key = JSON.stringify([cloud.cloud, cloud.region, loaded.root, options.cwd, options.env ?? null]);
  let session = sessions.get(key);
  if (!session) {
    session = resolveCloudCredentials({
      cloud: cloud.cloud,
      region: cloud.region,
      env: options.env,
      cwd: options.cwd,
      configRoot: loaded.root,
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
