import type { Dispatcher } from 'undici';
import { OperationError, UserError } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { header, OpenStackApiError, type HttpOptions, type HttpResponse, type RetryPolicy } from './http.js';
import type { KeystoneSession } from './keystone.js';
import type { HeatOutput } from '../../plan/heat.js';
import { pollUntil } from '../../util/poll.js';

export interface StackRef {
  name: string;
  id: string;
}

export type { HeatOutput };

export interface HeatStack {
  id: string;
  stack_name: string;
  stack_status: string;
  stack_status_reason?: string;
  parameters?: Record<string, string>;
  outputs?: HeatOutput[];
}

export interface HeatEvent {
  id: string;
  event_time?: string;
  resource_name: string;
  logical_resource_id?: string;
  physical_resource_id?: string;
  resource_status: string;
  resource_status_reason?: string;
}

export interface StackPreviewResource {
  resource_name: string;
  resource_type?: string;
  resource_action?: string;
}

/** Heat's update preview: resources by what the update would do to them. */
export interface ResourceChanges {
  added: StackPreviewResource[];
  deleted: StackPreviewResource[];
  replaced: StackPreviewResource[];
  updated: StackPreviewResource[];
  unchanged: StackPreviewResource[];
}

export interface StackInput {
  /** The template text (YAML or JSON); Heat accepts it as a string. */
  template: string;
  parameters: Record<string, string>;
  timeoutMinutes?: number;
}

export interface WaitOptions {
  action: 'CREATE' | 'UPDATE' | 'DELETE' | 'CHECK';
  timeoutMs: number;
  log: Logger;
  /** First poll interval; it doubles up to maxPollMs (the python client polls every 5 s). */
  pollMs?: number;
  maxPollMs?: number;
  /** Only events after this one are shown (the last event before the action started). */
  marker?: string;
  /**
   * The wait picks up an action already seen IN_PROGRESS (an earlier run lost contact): the stack's own
   * status is then enough to end it, as for a create.
   */
  resumed?: boolean;
}

/**
 * Heat v1 over the catalog's orchestration endpoint. Stacks are addressed as /stacks/{name}/{id}: the
 * name-only form answers 302, and we keep the id instead of following redirects.
 */
export class HeatClient {
  private base?: string;

  constructor(
    private readonly session: KeystoneSession,
    private readonly options: { dispatcher?: Dispatcher; sleep?: (ms: number) => Promise<void>; now?: () => number } = {},
  ) {}

  private async call(path: string, options: Omit<HttpOptions, 'service' | 'dispatcher'> = {}): Promise<HttpResponse> {
    this.base ??= await this.session.endpoint('orchestration');
    return this.session.serviceRequest(this.base, path, { ...options, service: 'Heat', dispatcher: this.options.dispatcher });
  }


  /** The stack's name and id, or undefined when there is no such stack. */
  async find(name: string): Promise<StackRef | undefined> {
    const response = await this.call(`/stacks/${encodeURIComponent(name)}`, { accept: [302, 404] });
    if (response.status === 404) return undefined;
    if (response.status === 302) {
      const location = header(response, 'location') ?? '';
      const match = /\/stacks\/([^/?]+)\/([^/?]+)/.exec(new URL(location, 'http://x').pathname);
      if (!match) throw new OperationError(`Heat redirected the lookup of stack ${name} to an unexpected place: ${location}`, undefined, 'OPENSTACK_PROTOCOL');
      return { name: decodeURIComponent(match[1]!), id: decodeURIComponent(match[2]!) };
    }
    const stack = (response.body as { stack?: HeatStack }).stack;
    if (!stack) throw new OperationError(`Heat answered the lookup of stack ${name} without a stack`, undefined, 'OPENSTACK_PROTOCOL');
    return { name: stack.stack_name, id: stack.id };
  }

  async create(name: string, input: StackInput): Promise<StackRef> {
    const response = await this.call('/stacks', {
      method: 'POST',
      json: {
        stack_name: name,
        template: input.template,
        parameters: input.parameters,
        files: {},
        environment: {},
        disable_rollback: true,
        ...(input.timeoutMinutes ? { timeout_mins: input.timeoutMinutes } : {}),
      },
    });
    const id = (response.body as { stack?: { id?: string } }).stack?.id;
    if (!id) throw new OperationError(`Heat accepted stack ${name} but returned no id`, undefined, 'OPENSTACK_PROTOCOL');
    return { name, id };
  }

  /**
   * With a template: PUT (the whole stack is replaced by this template and these parameters).
   * Without: PATCH, which keeps the existing template and changes only the given parameters.
   */
  async update(ref: StackRef, input: Partial<StackInput> & { parameters: Record<string, string> }): Promise<void> {
    const body = {
      parameters: input.parameters,
      files: {},
      environment: {},
      disable_rollback: true,
      ...(input.timeoutMinutes ? { timeout_mins: input.timeoutMinutes } : {}),
      ...(input.template !== undefined ? { template: input.template } : { existing: true }),
    };
    await this.call(stackPath(ref), { method: input.template !== undefined ? 'PUT' : 'PATCH', json: body });
  }

  /**
   * Heat's stack check (`openstack stack check`): every resource asks its service whether it is still there, and
   * a server deleted behind Heat's back (a preempted instance) is marked CHECK_FAILED, which the next update
   * replaces. Returns how the check ended: CHECK_FAILED is an answer here, not an error.
   */
  async check(ref: StackRef, options: Omit<WaitOptions, 'action'>): Promise<{ status: 'CHECK_COMPLETE' | 'CHECK_FAILED'; reason: string }> {
    const marker = await this.lastEventId(ref);
    await this.requestCheck(ref);
    try {
      const stack = await this.waitFor(ref, { ...options, action: 'CHECK', marker });
      return { status: 'CHECK_COMPLETE', reason: stack?.stack_status_reason ?? '' };
    } catch (error) {
      const failed = error instanceof OperationError && error.code === 'HEAT_STACK_FAILED' && / CHECK_FAILED: /.exec(error.message);
      if (!failed) throw error;
      return { status: 'CHECK_FAILED', reason: error.message.slice(failed.index + ' CHECK_FAILED: '.length) };
    }
  }

  /** Asks for Heat's stack check and returns at once: the stack shows CHECK_IN_PROGRESS, then how it ended. */
  async requestCheck(ref: StackRef): Promise<void> {
    await this.call(`${stackPath(ref)}/actions`, { method: 'POST', json: { check: null } });
  }

  async show(ref: StackRef, retry?: RetryPolicy): Promise<HeatStack> {
    const response = await this.call(stackPath(ref), retry ? { retry } : {});
    return (response.body as { stack: HeatStack }).stack;
  }

  /** Events after `marker`, oldest first. */
  async events(ref: StackRef, marker?: string, retry?: RetryPolicy): Promise<HeatEvent[]> {
    const query = new URLSearchParams({ sort_dir: 'asc', limit: '100' });
    if (marker) query.set('marker', marker);
    const response = await this.call(`${stackPath(ref)}/events?${query}`, retry ? { retry } : {});
    return (response.body as { events?: HeatEvent[] }).events ?? [];
  }

  async lastEventId(ref: StackRef): Promise<string | undefined> {
    const response = await this.call(`${stackPath(ref)}/events?${new URLSearchParams({ sort_dir: 'desc', limit: '1' })}`);
    return (response.body as { events?: HeatEvent[] }).events?.[0]?.id;
  }

  /**
   * What a create would make (POST /stacks/preview): the resources Heat would create, nothing made.
   * Safe to repeat, so passing failures are retried.
   */
  async previewCreate(name: string, input: StackInput): Promise<StackPreviewResource[]> {
    const response = await this.call('/stacks/preview', {
      method: 'POST',
      retry: {},
      json: { stack_name: name, template: input.template, parameters: input.parameters, files: {}, environment: {}, disable_rollback: true, ...(input.timeoutMinutes ? { timeout_mins: input.timeoutMinutes } : {}) },
    });
    const flatten = (list: unknown): StackPreviewResource[] =>
      (Array.isArray(list) ? list : []).flatMap((r: unknown) => (Array.isArray(r) ? flatten(r) : [r as StackPreviewResource]));
    return flatten((response.body as { stack?: { resources?: unknown } }).stack?.resources);
  }

  /** What an update would change (PUT .../preview, Heat's dry run): resources added, deleted, replaced, updated. */
  async previewUpdate(ref: StackRef, input: StackInput): Promise<ResourceChanges> {
    const response = await this.call(`${stackPath(ref)}/preview`, {
      method: 'PUT',
      retry: {},
      json: { parameters: input.parameters, template: input.template, files: {}, environment: {}, disable_rollback: true, ...(input.timeoutMinutes ? { timeout_mins: input.timeoutMinutes } : {}) },
    });
    const changes = (response.body as { resource_changes?: Partial<ResourceChanges> }).resource_changes ?? {};
    return { added: changes.added ?? [], deleted: changes.deleted ?? [], replaced: changes.replaced ?? [], updated: changes.updated ?? [], unchanged: changes.unchanged ?? [] };
  }

  /** The stack's current template, as a document. */
  async template(ref: StackRef): Promise<unknown> {
    return (await this.call(`${stackPath(ref)}/template`)).body;
  }

  async output(ref: StackRef, key: string): Promise<HeatOutput> {
    const response = await this.call(`${stackPath(ref)}/outputs/${encodeURIComponent(key)}`);
    return (response.body as { output: HeatOutput }).output;
  }

  async delete(ref: StackRef): Promise<void> {
    await this.call(stackPath(ref), { method: 'DELETE', accept: [404] });
  }

  /** Heat's own check of the template and parameters; a problem there is the user's to fix (exit 2). */
  async validate(template: string, parameters: Record<string, string>): Promise<Record<string, unknown>> {
    try {
      const response = await this.call('/validate', { method: 'POST', json: { template, parameters, files: {}, environment: {} } });
      return response.body as Record<string, unknown>;
    } catch (error) {
      if (error instanceof OpenStackApiError && error.status === 400) {
        throw new UserError(`Heat rejected the template or its parameters: ${error.apiText}`, 'Check provider.template and provider.parameters in depl.yaml.', 'HEAT_TEMPLATE_INVALID', { cause: error });
      }
      throw error;
    }
  }

  /**
   * Polls until the stack reaches <action>_COMPLETE (DELETE: also when it is gone), showing each new event.
   * <action>_FAILED throws with Heat's reason. The outcome is read from the stack's own events after
   * `marker`, as the python client does: right after a PUT the stack may still show the previous
   * action's status (an old UPDATE_COMPLETE must not end the wait).
   */
  async waitFor(ref: StackRef, options: WaitOptions): Promise<HeatStack | undefined> {
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const now = this.options.now ?? Date.now;
    const deadline = now() + options.timeoutMs;
    let marker = options.marker;
    let outcome: string | undefined;
    let stack: HeatStack | undefined;
    let lastStatus = `${options.action}_IN_PROGRESS`;
    // the lookups of a wait change nothing: passing failures are retried within the wait's own deadline
    const retry: RetryPolicy = {
      deadline,
      sleep,
      now,
      onRetry: (reason, ms) => options.log.warn(`Heat answered ${reason}; asking again in ${Math.max(1, Math.round(ms / 1000))} s`),
    };
    const done = await pollUntil<{ stack: HeatStack | undefined }>(async () => {
      try {
        for (const event of await this.events(ref, marker, retry)) {
          marker = event.id;
          options.log.step(describeEvent(ref, event));
          const ofStack = event.physical_resource_id === ref.id || event.resource_name === ref.name;
          if (ofStack && /_(COMPLETE|FAILED)$/.test(event.resource_status)) outcome = event.resource_status;
        }
        stack = await this.show(ref, retry);
      } catch (error) {
        if (options.action === 'DELETE' && error instanceof OpenStackApiError && error.status === 404) return { stack: undefined };
        if (error instanceof OpenStackApiError && (error.status === 401 || error.status === 403 || error.status === 404)) throw error;
        throw lostContact(ref, options.action, lastStatus, error);
      }
      lastStatus = stack.stack_status;
      // A new stack has no earlier status to confuse with, so its status alone is enough.
      if (outcome === undefined && (options.action === 'CREATE' || options.action === 'DELETE' || options.resumed)) {
        outcome = terminal(stack.stack_status);
        // the stack's own event can trail its status by a poll: the operator still reads how it ended
        if (outcome !== undefined) options.log.step(`stack ${ref.name} ${outcome}${stack.stack_status_reason ? `: ${stack.stack_status_reason}` : ''}`);
      }
      if (outcome === `${options.action}_COMPLETE`) return { stack };
      if (outcome !== undefined && (outcome.endsWith('_FAILED') || outcome === 'ROLLBACK_COMPLETE')) {
        throw new OperationError(
          `stack ${ref.name} ${outcome}: ${stack.stack_status_reason || '(Heat gave no reason)'}`,
          options.action === 'DELETE'
            ? `Look at it with 'openstack stack event list ${ref.name}', then run 'depl node-down' again.`
            : `Look at it with 'openstack stack event list ${ref.name}'; fix the cause and run again, or remove it with 'depl node-down'.`,
          'HEAT_STACK_FAILED',
        );
      }
      outcome = undefined;
      return undefined;
    }, {
      timeoutMs: options.timeoutMs,
      intervalMs: options.pollMs ?? 1000,
      maxIntervalMs: options.maxPollMs ?? 5000,
      now,
      sleep,
      onTimeout: () => {
        throw new OperationError(
          `stack ${ref.name} is still ${stack?.stack_status ?? lastStatus} after ${Math.round(options.timeoutMs / 60_000)} min; depl stopped waiting, Heat carries on`,
          `Run 'depl ${options.action === 'DELETE' ? 'node-down' : 'node-up'}' again to wait for it and carry on, raise provider.timeoutMinutes in depl.yaml, or look at the stack's events with the openstack client.`,
          'HEAT_TIMEOUT',
        );
      },
    });
    return done.stack;
  }
}

/** The cloud stopped answering while Heat was working: say that the stack carries on and how to resume. */
function lostContact(ref: StackRef, action: WaitOptions['action'], status: string, error: unknown): OperationError {
  const verb = action === 'DELETE' ? 'node-down' : 'node-up';
  const what = action === 'DELETE' ? 'deleted' : action === 'CREATE' ? 'built' : 'updated';
  return new OperationError(
    `lost contact with Heat while stack ${ref.name} was ${status}: ${(error as Error).message}`,
    `The stack is most likely still being ${what} by Heat. Run 'depl ${verb}' again: it waits for the stack and carries on.`,
    'HEAT_WAIT_INTERRUPTED',
    { cause: error },
  );
}

/**
 * Heat creates a Keystone trust on every stack create (deferred_auth_method = trusts), and current Keystone
 * refuses to make trusts from an application-credential token ("Delegated tokens cannot manage trusts."),
 * so Heat answers 403. Said plainly, with what to do instead, rather than "you lack a role".
 */
export function trustRefusal(error: unknown, authType: string, stack: string): UserError | undefined {
  if (!(error instanceof OpenStackApiError) || error.status !== 403 || authType !== 'application_credential') return undefined;
  const pathname = new URL(error.url).pathname;
  if (!/\/stacks(\/|$)/.test(pathname) || pathname.endsWith('/preview') || !['POST', 'PUT', 'PATCH'].includes(error.method)) return undefined;
  return new UserError(
    `Heat refused to create or update stack ${stack} for an application-credential login (HTTP 403: ${error.apiText})`,
    'Heat creates a Keystone trust for every stack, and Keystone refuses trusts to application credentials. ' +
      'Log in with your OpenStack password instead: in clouds.yaml use auth_type: password with username, user_domain_name, project_id ' +
      'and no password (depl asks for it on a terminal), or set OS_PASSWORD, or put auth.password in secure.yaml beside clouds.yaml.',
    'OPENSTACK_APP_CREDENTIAL_TRUST',
    { cause: error },
  );
}

function terminal(status: string): string | undefined {
  return /_(COMPLETE|FAILED)$/.test(status) ? status : undefined;
}

export function stackPath(ref: StackRef): string {
  return `/stacks/${encodeURIComponent(ref.name)}/${encodeURIComponent(ref.id)}`;
}

function describeEvent(ref: StackRef, event: HeatEvent): string {
  const what = event.resource_name === ref.name ? `stack ${ref.name}` : event.resource_name;
  const reason = event.resource_status_reason && !/^state changed$/i.test(event.resource_status_reason) ? `: ${event.resource_status_reason}` : '';
  return `${what} ${event.resource_status}${reason}`;
}
