import { randomUUID } from 'node:crypto';
import { heatError, type Reply } from './http.js';
import type { ServerPower } from './nova-servers.js';
import {
  creationOrder,
  evaluate,
  HeatTemplateError,
  parseTemplate,
  resolveParameters,
  withIndex,
  type EvalContext,
  type ParsedTemplate,
  type ResourceDef,
} from './template.js';

/** Where the emulated servers come from: the test decides (real local nodes, or just addresses). */
export interface ServerDriver extends ServerPower {
  createServer(name: string): Promise<{ address: string }>;
  deleteServer(name: string): Promise<void>;
  /**
   * A preemption's warning: the ACPI shutdown Nova sends before it deletes the instance (the test decides what
   * the machine does with it and how long it takes; the emulator waits for it, as Nectar waits up to 10 minutes).
   */
  shutdownSignal?(name: string): Promise<void>;
}

export interface HeatBehaviour {
  /** Fail the next creates: the first server goes to ERROR with this reason. */
  failCreate?: string;
  /** Pause this long at each resource step (a slow cloud). */
  stepDelayMs?: number;
  /**
   * Keystone refuses trusts to application-credential tokens ("Delegated tokens cannot manage trusts."), as on a
   * current cloud, so Heat answers 403 wherever it must make one. Default true.
   */
  refuseTrustsToApplicationCredentials?: boolean;
  /**
   * Heat persists a stack's new status before it adds the stack's own event (Stack.state_set): a client that
   * lists events and then shows the stack can see the final status with no final event yet. Add the event this
   * much later. Default 0.
   */
  stackEventLagMs?: number;
}

interface Server {
  index: number;
  name: string;
  id: string;
  address: string;
  /** The flavor property as given (name or id): Nova's usage counts its vCPUs and RAM. */
  flavor: string;
  /** Deleted behind Heat's back (a preempted instance): Heat still lists it, with no address. */
  gone?: boolean;
  /** Heat's stack check found it gone: the next update replaces it. */
  checkFailed?: boolean;
}

/** What the stacks hold, for the quota usage Nova, Neutron and Cinder report. */
export interface StackHoldings {
  servers: string[];
  securityGroups: number[];
  volumes: number[];
  floatingIps: number;
}

interface Resource {
  name: string;
  type: string;
  status: string;
  reason: string;
  physicalId: string;
  /** OS::Nova::Server: one; ResourceGroup: its members by index. */
  servers: Map<number, Server>;
  updatedTime: string;
}

interface StackEvent {
  id: string;
  event_time: string;
  resource_name: string;
  logical_resource_id: string;
  physical_resource_id: string;
  resource_status: string;
  resource_status_reason: string;
}

interface Stack {
  id: string;
  name: string;
  status: string;
  reason: string;
  created: string;
  updated: string | null;
  deleted: boolean;
  template: ParsedTemplate;
  given: Record<string, unknown>;
  parameters: Record<string, string>;
  resources: Map<string, Resource>;
  events: StackEvent[];
  timeoutMins?: number;
  disableRollback: boolean;
  tags: string[];
  /** The user whose trust the stack holds (its creator, or the last other user who updated it). */
  trustor: string;
}

export interface HeatRequest {
  method: string;
  /** Path below /orchestration/v1/{project}, e.g. /stacks/web/1234/events */
  path: string;
  query: URLSearchParams;
  body: unknown;
  /** Absolute URL prefix of the project, for links and redirects. */
  base: string;
  /** Who asks: the token's user, and whether it is an application credential's (a delegated token). */
  caller?: { userId: string; applicationCredential: boolean };
}

/**
 * Heat v1: stacks with create / update (PUT, PATCH) / delete running in the background, events with
 * markers, outputs, validate, the 302 lookup redirect and Heat-shaped errors. Servers are made through
 * the injected ServerDriver, one per OS::Nova::Server (and per ResourceGroup member).
 */
export class EmulatedHeat {
  private readonly stacks: Stack[] = [];
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly driver: ServerDriver,
    private readonly behaviour: HeatBehaviour,
    private readonly projectId: string,
    /** Nova's key pairs: key_name is checked against them, as Heat's nova.keypair constraint does. */
    private readonly keypairExists: (name: string) => boolean = () => true,
    /** Nova's quota check of one more server of this flavor: its refusal message, undefined when it fits. */
    private readonly novaQuotaRefusal: (flavor: string) => string | undefined = () => undefined,
  ) {}

  /** Servers being made: Nova counts them against the quota from the moment it accepts them. */
  private readonly building: string[] = [];

  /** Servers (by flavor), security groups (by rule count, Neutron's two egress rules included), volumes (by size). */
  holdings(): StackHoldings {
    const out: StackHoldings = { servers: [...this.building], securityGroups: [], volumes: [], floatingIps: 0 };
    for (const stack of this.stacks.filter((s) => !s.deleted)) {
      for (const r of stack.resources.values()) {
        if (r.status.startsWith('DELETE_COMPLETE')) continue;
        for (const server of r.servers.values()) if (!server.gone) out.servers.push(server.flavor);
        const def = stack.template.resources[r.name];
        if (r.type === 'OS::Neutron::SecurityGroup') out.securityGroups.push((Array.isArray(def?.properties?.rules) ? def.properties.rules.length : 0) + 2);
        if (r.type === 'OS::Cinder::Volume') out.volumes.push(Number(evaluate(def?.properties?.size ?? 0, this.context(stack))) || 0);
        if (r.type === 'OS::Neutron::FloatingIP') out.floatingIps += 1;
      }
    }
    return out;
  }

  /** Every server's key_name must name an existing key pair. */
  private checkKeyNames(template: ParsedTemplate, parameters: Record<string, string>): void {
    const ctx: EvalContext = {
      parameters,
      parameterTypes: Object.fromEntries(Object.entries(template.parameters).map(([k, d]) => [k, d.type])),
      conditions: template.conditions,
      resourceId: () => '',
      attribute: () => null,
    };
    for (const [name, def] of Object.entries(template.resources)) {
      const server = def.type === 'OS::Nova::Server' ? def : def.type === 'OS::Heat::ResourceGroup' ? (def.properties?.resource_def as ResourceDef) : undefined;
      if (server?.type !== 'OS::Nova::Server' || server.properties?.key_name === undefined) continue;
      const key = evaluate(server.properties.key_name, ctx);
      if (typeof key === 'string' && key !== '' && !this.keypairExists(key)) {
        throw new HeatTemplateError('StackValidationFailed', `Property error: resources.${name}.properties.key_name: Error validating value '${key}': The Key (${key}) could not be found.`);
      }
    }
  }

  /** Stacks that are not deleted, for test assertions. */
  list(): Array<{ id: string; name: string; status: string; servers: Server[] }> {
    return this.stacks
      .filter((s) => !s.deleted)
      .map((s) => ({ id: s.id, name: s.name, status: s.status, servers: [...s.resources.values()].flatMap((r) => [...r.servers.values()]) }));
  }

  /**
   * The cloud takes a server back as Nectar does a preemptible instance: the ACPI shutdown (the driver's
   * shutdownSignal, awaited), then the instance is deleted. Heat is not told: its resource stays COMPLETE, the
   * server keeps its name in the outputs and has no address, until a stack check marks it and an update replaces it.
   */
  async preempt(serverName: string): Promise<void> {
    const server = this.stacks.filter((st) => !st.deleted).flatMap((st) => [...st.resources.values()].flatMap((r) => [...r.servers.values()])).find((sv) => sv.name === serverName && !sv.gone);
    if (!server) throw new Error(`no server named ${serverName}`);
    await this.driver.shutdownSignal?.(serverName);
    await this.driver.deleteServer(serverName);
    server.gone = true;
  }

  /** Waits for background stack operations (used when the emulator closes). */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  handle(req: HeatRequest): Reply | Promise<Reply> {
    const parts = req.path.split('/').filter(Boolean).map(decodeURIComponent);
    try {
      if (parts[0] === 'validate' && parts.length === 1 && req.method === 'POST') return this.validate(req.body);
      if (parts[0] !== 'stacks') return heatError(404, 'HTTPNotFound', `The resource could not be found: ${req.path}`);
      if (parts.length === 2 && parts[1] === 'preview' && req.method === 'POST') return this.previewCreate(req);
      if (parts.length === 1) {
        if (req.method === 'GET') return this.index(req);
        if (req.method === 'POST') return this.create(req);
        return heatError(405, 'HTTPMethodNotAllowed', 'Method not allowed');
      }
      const [, nameOrId, second, ...rest] = parts;
      const byName = this.lookup(nameOrId!);
      // /stacks/{name-or-id}[/{sub}] without the id: Heat answers with a redirect to the canonical URL
      if (second === undefined || (byName && second !== byName.id)) {
        if (!byName) return heatError(404, 'EntityNotFound', `The Stack (${nameOrId}) could not be found.`);
        const tail = [second, ...rest].filter((p) => p !== undefined).map(encodeURIComponent).join('/');
        const query = req.query.toString();
        const location = `${req.base}/stacks/${encodeURIComponent(byName.name)}/${byName.id}${tail ? '/' + tail : ''}${query ? '?' + query : ''}`;
        return { status: 302, headers: { location }, body: { code: 302, title: 'Found', explanation: `The resource was found at ${location}` } };
      }
      const stack = this.stacks.find((s) => s.id === second && s.name === nameOrId && !s.deleted);
      if (!stack) return heatError(404, 'EntityNotFound', `The Stack (${nameOrId}) could not be found.`);
      return this.stackRoute(req, stack, rest);
    } catch (error) {
      if (error instanceof HeatTemplateError) return heatError(400, error.type, error.message);
      throw error;
    }
  }

  private lookup(nameOrId: string): Stack | undefined {
    return this.stacks.find((s) => !s.deleted && (s.name === nameOrId || s.id === nameOrId));
  }

  private stackRoute(req: HeatRequest, stack: Stack, rest: string[]): Reply {
    const [sub, key] = rest;
    if (sub === 'preview' && req.method === 'PUT') return this.previewUpdate(stack, req);
    if (sub === 'actions' && req.method === 'POST') return this.action(stack, req.body);
    if (sub === undefined) {
      if (req.method === 'GET') return { status: 200, body: { stack: this.show(stack, req, req.query.get('resolve_outputs') !== 'False' && req.query.get('resolve_outputs') !== 'false') } };
      if (req.method === 'PUT' || req.method === 'PATCH') return this.update(stack, req);
      if (req.method === 'DELETE') return this.remove(stack);
      return heatError(405, 'HTTPMethodNotAllowed', 'Method not allowed');
    }
    if (req.method !== 'GET') return heatError(405, 'HTTPMethodNotAllowed', 'Method not allowed');
    if (sub === 'events') return { status: 200, body: { events: this.events(stack, req) } };
    if (sub === 'outputs' && key === undefined) {
      return { status: 200, body: { outputs: Object.entries(stack.template.outputs).map(([k, o]) => ({ output_key: k, description: o.description ?? 'No description given' })) } };
    }
    if (sub === 'outputs') {
      const output = this.outputs(stack).find((o) => o.output_key === key);
      if (!output) return heatError(404, 'NotFound', `Specified output key ${key} not found.`);
      return { status: 200, body: { output } };
    }
    if (sub === 'template') return { status: 200, body: stack.template.document };
    if (sub === 'resources') {
      return { status: 200, body: { resources: [...stack.resources.values()].map((r) => this.resourceDoc(stack, r, req)) } };
    }
    return heatError(404, 'HTTPNotFound', `The resource could not be found: ${rest.join('/')}`);
  }

  private index(req: HeatRequest): Reply {
    const stacks = this.stacks.filter((s) => !s.deleted).map((s) => this.summary(s, req));
    return { status: 200, body: { stacks } };
  }

  private summary(s: Stack, req: HeatRequest) {
    return {
      id: s.id,
      stack_name: s.name,
      description: s.template.description ?? 'No description',
      creation_time: s.created,
      updated_time: s.updated,
      deletion_time: null,
      stack_status: s.status,
      stack_status_reason: s.reason,
      stack_owner: null,
      parent: null,
      stack_user_project_id: this.projectId,
      project: this.projectId,
      tags: s.tags.length > 0 ? s.tags : null,
      links: [{ href: `${req.base}/stacks/${encodeURIComponent(s.name)}/${s.id}`, rel: 'self' }],
    };
  }

  private show(s: Stack, req: HeatRequest, resolveOutputs: boolean) {
    return {
      ...this.summary(s, req),
      parameters: s.parameters,
      disable_rollback: s.disableRollback,
      timeout_mins: s.timeoutMins ?? null,
      capabilities: [],
      notification_topics: [],
      template_description: s.template.description ?? 'No description',
      ...(resolveOutputs ? { outputs: this.outputs(s) } : {}),
    };
  }

  private resourceDoc(s: Stack, r: Resource, req: HeatRequest) {
    return {
      resource_name: r.name,
      logical_resource_id: r.name,
      physical_resource_id: r.physicalId,
      resource_type: r.type,
      resource_status: r.status,
      resource_status_reason: r.reason,
      updated_time: r.updatedTime,
      required_by: [],
      links: [{ href: `${req.base}/stacks/${encodeURIComponent(s.name)}/${s.id}/resources/${r.name}`, rel: 'self' }],
    };
  }

  private events(s: Stack, req: HeatRequest) {
    const desc = req.query.get('sort_dir') === 'desc';
    let list = desc ? [...s.events].reverse() : [...s.events];
    const marker = req.query.get('marker');
    if (marker) {
      const at = list.findIndex((e) => e.id === marker);
      if (at === -1) throw new HeatTemplateError('HTTPBadRequest', `Invalid marker: ${marker}`);
      list = list.slice(at + 1);
    }
    const limit = Number(req.query.get('limit') ?? 'NaN');
    if (Number.isInteger(limit) && limit >= 0) list = list.slice(0, limit);
    return list.map((e) => ({
      ...e,
      links: [
        { href: `${req.base}/stacks/${encodeURIComponent(s.name)}/${s.id}/resources/${e.resource_name}/events/${e.id}`, rel: 'self' },
        { href: `${req.base}/stacks/${encodeURIComponent(s.name)}/${s.id}/resources/${e.resource_name}`, rel: 'resource' },
        { href: `${req.base}/stacks/${encodeURIComponent(s.name)}/${s.id}`, rel: 'stack' },
      ],
    }));
  }

  private outputs(s: Stack) {
    return Object.entries(s.template.outputs).map(([key, o]) => {
      const base = { output_key: key, description: o.description ?? 'No description given' };
      try {
        return { ...base, output_value: evaluate(o.value, this.context(s)) };
      } catch (error) {
        return { ...base, output_value: null, output_error: (error as Error).message };
      }
    });
  }

  private context(s: Stack): EvalContext {
    return {
      parameters: s.parameters,
      parameterTypes: Object.fromEntries(Object.entries(s.template.parameters).map(([k, d]) => [k, d.type])),
      conditions: s.template.conditions,
      resourceId: (name) => s.resources.get(name)?.physicalId ?? (name in s.template.resources ? '' : undefined),
      attribute: (name, path) => {
        const r = s.resources.get(name);
        if (!(name in s.template.resources)) throw new HeatTemplateError('StackValidationFailed', `The Referenced Attribute (${name} ${String(path[0])}) is incorrect.`);
        if (!r) return null;
        return resourceAttribute(r, path);
      },
    };
  }

  private validate(body: unknown): Reply {
    const { template, parameters } = (body ?? {}) as { template?: unknown; parameters?: Record<string, unknown> };
    if (template === undefined) return heatError(400, 'HTTPBadRequest', 'No Template provided.');
    const parsed = parseTemplate(template);
    creationOrder(parsed.resources);
    this.checkKeyNames(parsed, resolveParameters(parsed, parameters ?? {}, pseudoParameters('validate', 'validate', this.projectId)));
    const params = Object.fromEntries(
      Object.entries(parsed.parameters).map(([k, d]) => [
        k,
        {
          Type: d.type === 'number' ? 'Number' : d.type === 'string' ? 'String' : d.type,
          Description: d.description ?? '',
          Label: d.label ?? k,
          NoEcho: d.hidden ? 'true' : 'false',
          ...(d.default !== undefined ? { Default: d.default } : {}),
          ...(parameters?.[k] !== undefined ? { Value: parameters[k] } : {}),
        },
      ]),
    );
    return { status: 200, body: { Description: parsed.description ?? 'No description', Parameters: params, ParameterGroups: [], Environment: { parameters: parameters ?? {}, resource_registry: { resources: {} } } } };
  }

  private create(req: HeatRequest): Reply {
    const body = (req.body ?? {}) as { stack_name?: string; template?: unknown; parameters?: Record<string, unknown>; timeout_mins?: number; disable_rollback?: boolean; tags?: string | string[] };
    if (!body.stack_name) return heatError(400, 'HTTPBadRequest', 'No stack name specified');
    if (!/^[a-zA-Z][a-zA-Z0-9_.-]{0,254}$/.test(body.stack_name)) {
      return heatError(400, 'StackValidationFailed', `Invalid stack name ${body.stack_name} must contain only alphanumeric or "_-." characters, must start with alpha and must be 255 characters or less.`);
    }
    if (this.lookup(body.stack_name)) return heatError(409, 'StackExists', `The Stack (${body.stack_name}) already exists.`);
    if (body.template === undefined) return heatError(400, 'HTTPBadRequest', 'No template specified');
    // every new stack gets a trust made with the caller's token
    if (this.trustRefused(req)) return heatError(403, 'Forbidden', 'Access was denied to this resource.');
    const template = parseTemplate(body.template);
    creationOrder(template.resources);
    const id = randomUUID();
    const parameters = resolveParameters(template, body.parameters ?? {}, pseudoParameters(body.stack_name, id, this.projectId));
    this.checkKeyNames(template, parameters);
    const stack: Stack = {
      id,
      name: body.stack_name,
      status: 'CREATE_IN_PROGRESS',
      reason: 'Stack CREATE started',
      created: isoSeconds(),
      updated: null,
      deleted: false,
      template,
      given: body.parameters ?? {},
      parameters,
      resources: new Map(),
      events: [],
      timeoutMins: body.timeout_mins,
      disableRollback: body.disable_rollback ?? true,
      tags: typeof body.tags === 'string' ? body.tags.split(',') : (body.tags ?? []),
      trustor: req.caller?.userId ?? '',
    };
    this.stacks.push(stack);
    this.event(stack, stack.name, stack.id, 'CREATE_IN_PROGRESS', 'Stack CREATE started');
    this.run(stack, 'CREATE', () => this.converge(stack, 'CREATE'));
    const href = `${req.base}/stacks/${encodeURIComponent(stack.name)}/${stack.id}`;
    return { status: 201, headers: { location: href }, body: { stack: { id: stack.id, links: [{ href, rel: 'self' }] } } };
  }

  /** POST /stacks/preview: the resources a create would make (a group's members as a nested list), nothing made. */
  private previewCreate(req: HeatRequest): Reply {
    const body = (req.body ?? {}) as { stack_name?: string; template?: unknown; parameters?: Record<string, unknown> };
    if (!body.stack_name) return heatError(400, 'HTTPBadRequest', 'No stack name specified');
    if (body.template === undefined) return heatError(400, 'HTTPBadRequest', 'No template specified');
    const template = parseTemplate(body.template);
    const order = creationOrder(template.resources);
    const parameters = resolveParameters(template, body.parameters ?? {}, pseudoParameters(body.stack_name, 'None', this.projectId));
    this.checkKeyNames(template, parameters);
    const ctx = { ...this.templateContext(template, parameters) };
    const doc = (name: string, type: string) => ({ resource_name: name, resource_type: type, resource_action: 'INIT', resource_status: 'COMPLETE', stack_name: body.stack_name });
    const resources = order.map((name) => {
      const def = template.resources[name]!;
      if (def.type !== 'OS::Heat::ResourceGroup') return doc(name, def.type);
      const count = Number(evaluate(def.properties?.count ?? 1, ctx));
      const member = (def.properties!.resource_def as ResourceDef).type;
      return [doc(name, def.type), ...Array.from({ length: count }, (_, i) => doc(String(i), member))];
    });
    return { status: 200, body: { stack: { stack_name: body.stack_name, id: 'None', parameters, resources, links: [] } } };
  }

  /** PUT .../preview: Heat's dry-run update, resources by what the update would do to them. */
  private previewUpdate(stack: Stack, req: HeatRequest): Reply {
    const body = (req.body ?? {}) as { template?: unknown; parameters?: Record<string, unknown> };
    const template = body.template !== undefined && body.template !== null ? parseTemplate(body.template) : stack.template;
    creationOrder(template.resources);
    const parameters = resolveParameters(template, body.parameters ?? {}, pseudoParameters(stack.name, stack.id, this.projectId));
    this.checkKeyNames(template, parameters);
    const ctx = this.templateContext(template, parameters);
    const changes: Record<'added' | 'deleted' | 'replaced' | 'updated' | 'unchanged', Array<{ resource_name: string; resource_type: string }>> = { added: [], deleted: [], replaced: [], updated: [], unchanged: [] };
    for (const [name, def] of Object.entries(template.resources)) {
      const r = stack.resources.get(name);
      const entry = { resource_name: name, resource_type: def.type };
      if (!r) changes.added.push(entry);
      else if (def.type === 'OS::Heat::ResourceGroup' && Number(evaluate(def.properties?.count ?? 1, ctx)) !== r.servers.size) changes.updated.push(entry);
      else changes.unchanged.push(entry);
    }
    for (const r of stack.resources.values()) if (!(r.name in template.resources)) changes.deleted.push({ resource_name: r.name, resource_type: r.type });
    return { status: 200, body: { resource_changes: changes } };
  }

  private templateContext(template: ParsedTemplate, parameters: Record<string, string>): EvalContext {
    return {
      parameters,
      parameterTypes: Object.fromEntries(Object.entries(template.parameters).map(([k, d]) => [k, d.type])),
      conditions: template.conditions,
      resourceId: () => '',
      attribute: () => null,
    };
  }

  /** A trust made now with the caller's token: refused for an application credential's (see HeatBehaviour). */
  private trustRefused(req: HeatRequest): boolean {
    return req.caller?.applicationCredential === true && this.behaviour.refuseTrustsToApplicationCredentials !== false;
  }

  private update(stack: Stack, req: HeatRequest): Reply {
    // Heat's update_stack loads the stack with check_refresh_cred: a caller other than the trustor (another user,
    // or the same user in another project) gets a new trust made with their token; the trustor's own tokens,
    // application credentials included, use the stored one and make none
    const newTrustor = req.caller !== undefined && req.caller.userId !== stack.trustor;
    if (newTrustor && this.trustRefused(req)) return heatError(403, 'Forbidden', 'Access was denied to this resource.');
    if (stack.status.endsWith('_IN_PROGRESS')) return heatError(409, 'ActionInProgress', `Stack ${stack.name} already has an action (${stack.status.split('_')[0]}) in progress.`);
    const body = (req.body ?? {}) as { template?: unknown; parameters?: Record<string, unknown>; existing?: boolean; timeout_mins?: number; disable_rollback?: boolean; clear_parameters?: string[] };
    const patch = req.method === 'PATCH';
    let template = stack.template;
    // the python client sends "template": null with --existing
    const newTemplate = body.template ?? undefined;
    if (newTemplate !== undefined) template = parseTemplate(newTemplate);
    else if (!patch) return heatError(400, 'HTTPBadRequest', 'No template specified');
    creationOrder(template.resources);
    const given = patch ? { ...stack.given, ...(body.parameters ?? {}) } : { ...(body.parameters ?? {}) };
    for (const k of body.clear_parameters ?? []) delete given[k];
    const parameters = resolveParameters(template, given, pseudoParameters(stack.name, stack.id, this.projectId));
    this.checkKeyNames(template, parameters);
    if (newTrustor) stack.trustor = req.caller!.userId;
    stack.template = template;
    stack.given = given;
    stack.parameters = parameters;
    if (body.timeout_mins !== undefined) stack.timeoutMins = body.timeout_mins;
    stack.status = 'UPDATE_IN_PROGRESS';
    stack.reason = 'Stack UPDATE started';
    stack.updated = isoSeconds();
    this.event(stack, stack.name, stack.id, 'UPDATE_IN_PROGRESS', 'Stack UPDATE started');
    this.run(stack, 'UPDATE', () => this.converge(stack, 'UPDATE'));
    return { status: 202, body: null };
  }

  /** POST .../actions: only `check` here (suspend, resume, cancel_update are not emulated). */
  private action(stack: Stack, body: unknown): Reply {
    const keys = Object.keys((body ?? {}) as Record<string, unknown>);
    if (keys.length !== 1) return heatError(400, 'HTTPBadRequest', 'Invalid action, only one action is allowed');
    if (keys[0] !== 'check') return heatError(400, 'HTTPBadRequest', `the OpenStack emulator does not do the action "${keys[0]}"`);
    if (stack.status.endsWith('_IN_PROGRESS')) return heatError(409, 'ActionInProgress', `Stack ${stack.name} already has an action (${stack.status.split('_')[0]}) in progress.`);
    stack.status = 'CHECK_IN_PROGRESS';
    stack.reason = 'Stack CHECK started';
    this.event(stack, stack.name, stack.id, 'CHECK_IN_PROGRESS', 'Stack CHECK started');
    this.run(stack, 'CHECK', async () => {
      const failures: string[] = [];
      for (const r of stack.resources.values()) {
        this.setResource(stack, r, 'CHECK_IN_PROGRESS', 'state changed');
        await this.pause();
        const gone = [...r.servers.values()].filter((server) => server.gone);
        for (const server of gone) server.checkFailed = true;
        if (gone.length === 0) {
          this.setResource(stack, r, 'CHECK_COMPLETE', 'state changed');
          continue;
        }
        const reason = gone.map((server) => `NotFound: resources.${r.name}${r.type === 'OS::Heat::ResourceGroup' ? `.resources[${server.index}]` : ''}: Instance ${server.id} could not be found. (HTTP 404)`).join('; ');
        this.setResource(stack, r, 'CHECK_FAILED', reason);
        failures.push(reason);
      }
      if (failures.length > 0) throw new ResourceFailure(failures.join('; '));
    });
    return { status: 200, body: null };
  }

  private remove(stack: Stack): Reply {
    if (stack.status === 'DELETE_IN_PROGRESS') return { status: 204 };
    stack.status = 'DELETE_IN_PROGRESS';
    stack.reason = 'Stack DELETE started';
    this.event(stack, stack.name, stack.id, 'DELETE_IN_PROGRESS', 'Stack DELETE started');
    this.run(stack, 'DELETE', async () => {
      for (const name of creationOrder(stack.template.resources).reverse()) {
        const r = stack.resources.get(name);
        if (!r) continue;
        this.setResource(stack, r, 'DELETE_IN_PROGRESS', 'state changed');
        await this.pause();
        for (const server of [...r.servers.values()]) {
          if (!server.gone) await this.driver.deleteServer(server.name);
          r.servers.delete(server.index);
        }
        this.setResource(stack, r, 'DELETE_COMPLETE', 'state changed');
        stack.resources.delete(name);
      }
    }, () => {
      stack.deleted = true;
    });
    return { status: 204 };
  }

  /** Runs an action in the background; the stack ends <ACTION>_COMPLETE or _FAILED with the reason. */
  private run(stack: Stack, action: string, work: () => Promise<void>, after?: () => void): void {
    const p = (async () => {
      try {
        await work();
        stack.status = `${action}_COMPLETE`;
        stack.reason = `Stack ${action} completed successfully`;
      } catch (error) {
        stack.status = `${action}_FAILED`;
        stack.reason = error instanceof ResourceFailure ? `Resource ${action} failed: ${error.message}` : `${action} aborted: ${(error as Error).message}`;
      }
      const lag = this.behaviour.stackEventLagMs ?? 0;
      if (lag > 0) await new Promise((r) => setTimeout(r, lag));
      this.event(stack, stack.name, stack.id, stack.status, stack.reason);
      after?.();
    })();
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  /** Brings every resource to what the template now says (create missing, grow or shrink groups). */
  private async converge(stack: Stack, action: 'CREATE' | 'UPDATE'): Promise<void> {
    const order = creationOrder(stack.template.resources);
    for (const gone of [...stack.resources.keys()].filter((n) => !(n in stack.template.resources))) {
      const r = stack.resources.get(gone)!;
      for (const server of r.servers.values()) if (!server.gone) await this.driver.deleteServer(server.name);
      this.setResource(stack, r, 'DELETE_COMPLETE', 'state changed');
      stack.resources.delete(gone);
    }
    for (const name of order) {
      const def = stack.template.resources[name]!;
      let r = stack.resources.get(name);
      const resourceAction = r ? 'UPDATE' : 'CREATE';
      if (!r) {
        r = { name, type: def.type, status: 'INIT_COMPLETE', reason: '', physicalId: randomUUID(), servers: new Map(), updatedTime: isoSeconds() };
        stack.resources.set(name, r);
      } else if (action === 'UPDATE' && !this.changes(stack, r, def)) {
        continue;
      }
      this.setResource(stack, r, `${resourceAction}_IN_PROGRESS`, 'state changed');
      await this.pause();
      try {
        await this.realise(stack, r, def);
      } catch (error) {
        const reason = error instanceof ResourceFailure ? error.message : `${(error as Error).name}: resources.${name}: ${(error as Error).message}`;
        this.setResource(stack, r, `${resourceAction}_FAILED`, reason);
        throw new ResourceFailure(reason);
      }
      this.setResource(stack, r, `${resourceAction}_COMPLETE`, 'state changed');
    }
  }

  /**
   * Only server counts matter to the emulator: a group changes when its count does. A resource a check found
   * gone (CHECK_FAILED) is replaced by any update, as Heat does; one gone but never checked is not noticed.
   */
  private changes(stack: Stack, r: Resource, def: ResourceDef): boolean {
    if ([...r.servers.values()].some((server) => server.checkFailed)) return true;
    if (def.type === 'OS::Heat::ResourceGroup') return this.groupCount(stack, def) !== r.servers.size;
    return false;
  }

  private groupCount(stack: Stack, def: ResourceDef): number {
    const count = Number(evaluate(def.properties?.count ?? 1, this.context(stack)));
    if (!Number.isInteger(count) || count < 0) throw new HeatTemplateError('StackValidationFailed', `Property error: count: ${count} is not a non-negative integer`);
    return count;
  }

  private async realise(stack: Stack, r: Resource, def: ResourceDef): Promise<void> {
    // members a check found gone: out first, then made again below under their index
    for (const server of [...r.servers.values()].filter((sv) => sv.checkFailed)) r.servers.delete(server.index);
    if (def.type === 'OS::Nova::Server') {
      if (r.servers.size === 0) r.servers.set(0, await this.makeServer(stack, def, `resources.${r.name}`, `${stack.name}-${r.name}`));
      return;
    }
    if (def.type !== 'OS::Heat::ResourceGroup') return;
    const count = this.groupCount(stack, def);
    const memberDef = def.properties!.resource_def as ResourceDef;
    // a ResourceGroup shrinks from the highest index, as Heat's does
    for (const server of [...r.servers.values()].filter((s) => s.index >= count).sort((a, b) => b.index - a.index)) {
      if (!server.gone) await this.driver.deleteServer(server.name);
      r.servers.delete(server.index);
    }
    const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !r.servers.has(i));
    if (memberDef.type !== 'OS::Nova::Server') return;
    const made = await Promise.allSettled(
      missing.map(async (i) => {
        const server = await this.makeServer(stack, withIndex(memberDef, i) as ResourceDef, `resources.${r.name}.resources[${i}]`, `${stack.name}-${r.name}-${i}`, i);
        r.servers.set(i, server);
      }),
    );
    const failed = made.find((m): m is PromiseRejectedResult => m.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async makeServer(stack: Stack, def: ResourceDef, path: string, fallbackName: string, index = 0): Promise<Server> {
    const properties = evaluate(def.properties ?? {}, this.context(stack)) as Record<string, unknown>;
    const name = typeof properties.name === 'string' && properties.name !== '' ? properties.name : fallbackName;
    if (this.behaviour.failCreate !== undefined) {
      throw new ResourceFailure(`ResourceInError: ${path}: Went to status ERROR due to "Message: ${this.behaviour.failCreate}, Code: 500"`);
    }
    const flavor = String(properties.flavor ?? '');
    // Nova answers POST /servers over quota with 403 and its message; Heat fails the resource with it
    const refusal = this.novaQuotaRefusal(flavor);
    if (refusal !== undefined) {
      throw new ResourceFailure(`Forbidden: ${path}: ${refusal} (HTTP 403) (Request-ID: req-${randomUUID()})`);
    }
    this.building.push(flavor);
    try {
      const { address } = await this.driver.createServer(name);
      return { index, name, id: randomUUID(), address, flavor };
    } finally {
      this.building.splice(this.building.indexOf(flavor), 1);
    }
  }

  private async pause(): Promise<void> {
    const ms = this.behaviour.stepDelayMs ?? 0;
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  }

  private setResource(stack: Stack, r: Resource, status: string, reason: string): void {
    r.status = status;
    r.reason = reason;
    r.updatedTime = isoSeconds();
    this.event(stack, r.name, r.physicalId, status, reason);
  }

  private event(stack: Stack, resource: string, physicalId: string, status: string, reason: string): void {
    stack.events.push({
      id: randomUUID(),
      event_time: isoSeconds(),
      resource_name: resource,
      logical_resource_id: resource,
      physical_resource_id: physicalId,
      resource_status: status,
      resource_status_reason: reason,
    });
  }
}

class ResourceFailure extends Error {}

function resourceAttribute(r: Resource, path: unknown[]): unknown {
  const [first, ...rest] = path.map(String);
  const serverAttr = (s: Server | undefined, attr: string | undefined, more: string[]): unknown => {
    if (!s) return null;
    // Heat resolves a deleted server's attributes to '' (its name comes from the resource's own properties)
    if (s.gone) return attr === 'name' ? s.name : attr === 'show' ? null : '';
    const attrs: Record<string, unknown> = {
      name: s.name,
      first_address: s.address,
      accessIPv4: s.address,
      networks: { public: [s.address] },
      addresses: { public: [{ addr: s.address, version: 4, 'OS-EXT-IPS:type': 'fixed' }] },
      show: { id: s.id, name: s.name, status: 'ACTIVE' },
    };
    if (attr === undefined || !(attr in attrs)) throw new HeatTemplateError('InvalidTemplateAttribute', `The Referenced Attribute (${r.name} ${attr}) is incorrect.`);
    let v = attrs[attr];
    for (const p of more) v = (v as Record<string, unknown> | undefined)?.[p];
    return v ?? null;
  };
  if (r.type === 'OS::Nova::Server') return serverAttr(r.servers.get(0), first, rest);
  if (r.type !== 'OS::Heat::ResourceGroup') return null;
  const members = [...r.servers.values()].sort((a, b) => a.index - b.index);
  if (first === 'refs') return members.map((m) => m.id);
  if (first === 'refs_map') return Object.fromEntries(members.map((m) => [String(m.index), m.id]));
  const dotted = /^resource\.(\d+)(?:\.(.+))?$/.exec(first ?? '');
  if (dotted) {
    const [attr, ...more] = dotted[2] ? [dotted[2], ...rest] : rest;
    return serverAttr(r.servers.get(Number(dotted[1])), attr, more);
  }
  if (first === 'attributes') return Object.fromEntries(members.map((m) => [String(m.index), serverAttr(m, rest[0], rest.slice(1))]));
  return members.map((m) => serverAttr(m, first, rest));
}

function pseudoParameters(name: string, id: string, projectId: string): Record<string, string> {
  return { 'OS::stack_name': name, 'OS::stack_id': id, 'OS::project_id': projectId };
}

function isoSeconds(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
