import { parse } from 'yaml';

/**
 * Just enough of Heat's template engine for depl's stacks: parameters (types, defaults, range and
 * allowed_values constraints), resources with dependencies, ResourceGroup with %index%, and the
 * intrinsic functions get_param, get_resource, get_attr, list_join, str_replace and a small yaql subset.
 */

export class HeatTemplateError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ParameterDef {
  type: string;
  default?: unknown;
  description?: string;
  label?: string;
  hidden?: boolean;
  constraints?: Array<{ range?: { min?: number; max?: number }; allowed_values?: unknown[]; length?: { min?: number; max?: number }; description?: string }>;
}

export interface ResourceDef {
  type: string;
  properties?: Record<string, unknown>;
  depends_on?: string | string[];
}

export interface ParsedTemplate {
  version: string;
  description?: string;
  parameters: Record<string, ParameterDef>;
  resources: Record<string, ResourceDef>;
  outputs: Record<string, { value: unknown; description?: string }>;
  /** The `conditions` section: name -> condition function (equals, not, and, or) or a boolean. */
  conditions: Record<string, unknown>;
  /** The template as a document, as GET .../template answers it. */
  document: Record<string, unknown>;
}

export const KNOWN_TYPES = new Set([
  'OS::Nova::Server',
  'OS::Heat::ResourceGroup',
  'OS::Neutron::SecurityGroup',
  'OS::Nova::KeyPair',
  'OS::Cinder::Volume',
  'OS::Cinder::VolumeAttachment',
  'OS::Heat::None',
]);

export function parseTemplate(template: unknown): ParsedTemplate {
  let doc: unknown = template;
  if (typeof template === 'string') {
    try {
      // YAML 1.2 core schema: dates such as 2018-08-31 stay strings, as in Heat's loader
      doc = parse(template);
    } catch (error) {
      throw new HeatTemplateError('HTTPBadRequest', `Error parsing template: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new HeatTemplateError('HTTPBadRequest', 'The template is not a JSON object or YAML mapping.');
  const t = doc as Record<string, unknown>;
  const version = t.heat_template_version;
  if (version === undefined) throw new HeatTemplateError('InvalidTemplateVersion', 'The template version is invalid: Template version was not provided');
  const resources = (t.resources ?? {}) as Record<string, ResourceDef>;
  for (const [name, resource] of Object.entries(resources)) {
    if (!resource || typeof resource.type !== 'string') throw new HeatTemplateError('StackValidationFailed', `Property error: resources.${name}: "type" is missing`);
    if (!KNOWN_TYPES.has(resource.type)) throw new HeatTemplateError('StackValidationFailed', `Failed to validate: resources.${name}: The Resource Type (${resource.type}) could not be found.`);
    if (resource.type === 'OS::Heat::ResourceGroup') {
      const def = resource.properties?.resource_def as ResourceDef | undefined;
      if (!def || typeof def.type !== 'string') throw new HeatTemplateError('StackValidationFailed', `Property error: resources.${name}.properties.resource_def: Property type not assigned`);
      if (!KNOWN_TYPES.has(def.type)) throw new HeatTemplateError('StackValidationFailed', `Failed to validate: resources.${name}: The Resource Type (${def.type}) could not be found.`);
    }
  }
  return {
    version: String(version),
    description: typeof t.description === 'string' ? t.description : undefined,
    parameters: (t.parameters ?? {}) as Record<string, ParameterDef>,
    resources,
    outputs: (t.outputs ?? {}) as Record<string, { value: unknown; description?: string }>,
    conditions: (t.conditions ?? {}) as Record<string, unknown>,
    document: t,
  };
}

/** The stack's parameter values as Heat shows them (all strings), after checking them against the template. */
export function resolveParameters(template: ParsedTemplate, given: Record<string, unknown>, pseudo: Record<string, string>): Record<string, string> {
  for (const key of Object.keys(given)) {
    if (!(key in template.parameters)) throw new HeatTemplateError('UnknownUserParameter', `The Parameter (${key}) was not defined in template.`);
  }
  const out: Record<string, string> = { ...pseudo };
  for (const [name, def] of Object.entries(template.parameters)) {
    const raw = given[name] ?? def.default;
    if (raw === undefined || raw === null) throw new HeatTemplateError('UserParameterMissing', `The Parameter (${name}) was not provided.`);
    const value = typeof raw === 'object' ? JSON.stringify(raw) : String(raw);
    if (def.type === 'number') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) throw new HeatTemplateError('StackValidationFailed', `Parameter '${name}' is invalid: could not convert string to float: '${value}'`);
      for (const c of def.constraints ?? []) {
        if (c.range && ((c.range.min !== undefined && n < c.range.min) || (c.range.max !== undefined && n > c.range.max))) {
          throw new HeatTemplateError('StackValidationFailed', `Parameter '${name}' is invalid: ${c.description ?? `The value must be in the range ${c.range.min ?? '-inf'} to ${c.range.max ?? 'inf'}.`}`);
        }
      }
    }
    for (const c of def.constraints ?? []) {
      if (c.allowed_values && !c.allowed_values.map(String).includes(value)) {
        throw new HeatTemplateError('StackValidationFailed', `Parameter '${name}' is invalid: ${c.description ?? `"${value}" is not an allowed value ${JSON.stringify(c.allowed_values)}`}`);
      }
    }
    out[name] = value;
  }
  return out;
}

/** What intrinsic functions can look at while a stack is being built. */
export interface EvalContext {
  parameters: Record<string, string>;
  parameterTypes: Record<string, string>;
  /** Physical id of a resource, for get_resource. */
  resourceId(name: string): string | undefined;
  /** get_attr [resource, attribute, ...path]. */
  attribute(resource: string, path: unknown[]): unknown;
  /** The template's conditions section, for `if`. */
  conditions?: Record<string, unknown>;
}

/** A condition: a name from the conditions section, a boolean, or equals / not / and / or. */
function condition(value: unknown, ctx: EvalContext): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    if (!ctx.conditions || !(value in ctx.conditions)) throw new HeatTemplateError('StackValidationFailed', `Invalid condition "${value}"`);
    return condition(ctx.conditions[value], ctx);
  }
  const [fn, arg] = Object.entries((value ?? {}) as Record<string, unknown>)[0] ?? [];
  if (fn === 'equals') {
    const [a, b] = (arg as unknown[]).map((x) => evaluate(x, ctx));
    return JSON.stringify(a) === JSON.stringify(b);
  }
  if (fn === 'not') return !condition(arg, ctx);
  if (fn === 'and') return (arg as unknown[]).every((c) => condition(c, ctx));
  if (fn === 'or') return (arg as unknown[]).some((c) => condition(c, ctx));
  throw new HeatTemplateError('StackValidationFailed', `the OpenStack emulator does not evaluate the condition ${JSON.stringify(value)}`);
}

export function evaluate(value: unknown, ctx: EvalContext): unknown {
  if (Array.isArray(value)) return value.map((v) => evaluate(v, ctx));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 1) {
    const [fn, arg] = entries[0]!;
    switch (fn) {
      case 'get_param': {
        const [name, ...path] = Array.isArray(arg) ? arg : [arg];
        const key = String(evaluate(name, ctx));
        if (!(key in ctx.parameters)) throw new HeatTemplateError('StackValidationFailed', `The Parameter (${key}) was not provided.`);
        let v: unknown = ctx.parameters[key];
        if (ctx.parameterTypes[key] === 'number') v = Number(v);
        for (const p of path) v = (v as Record<string, unknown> | undefined)?.[String(evaluate(p, ctx))];
        return v;
      }
      case 'get_resource': {
        const id = ctx.resourceId(String(arg));
        if (id === undefined) throw new HeatTemplateError('StackValidationFailed', `The specified reference "${String(arg)}" (in unknown) is incorrect.`);
        return id;
      }
      case 'get_attr': {
        const [resource, ...path] = (arg as unknown[]).map((a) => evaluate(a, ctx));
        return ctx.attribute(String(resource), path);
      }
      case 'list_join': {
        const [delimiter, ...lists] = arg as unknown[];
        const items = lists.flatMap((l) => evaluate(l, ctx) as unknown[]);
        return items.map((i) => (typeof i === 'string' ? i : JSON.stringify(i))).join(String(delimiter));
      }
      case 'str_replace': {
        const { template, params } = arg as { template: unknown; params: Record<string, unknown> };
        let text = String(evaluate(template, ctx));
        for (const [k, v] of Object.entries(params)) text = text.split(k).join(String(evaluate(v, ctx)));
        return text;
      }
      case 'yaql':
        return yaql(arg as { expression: string; data: unknown }, ctx);
      case 'if': {
        const [cond, yes, no] = arg as unknown[];
        return evaluate(condition(cond, ctx) ? yes : no, ctx);
      }
      default:
        break;
    }
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, evaluate(v, ctx)]));
}

/** `$.data.<key>` optionally followed by `.skip(n)`, `.first()`, `.last()` or `.len()`. */
function yaql(arg: { expression: string; data: unknown }, ctx: EvalContext): unknown {
  const data = evaluate(arg.data, ctx) as Record<string, unknown>;
  const m = /^\s*\$\.data\.([A-Za-z_][A-Za-z0-9_]*)((?:\.(?:skip\(\d+\)|first\(\)|last\(\)|len\(\)))*)\s*$/.exec(arg.expression);
  if (!m) throw new HeatTemplateError('StackValidationFailed', `the OpenStack emulator does not evaluate the yaql expression "${arg.expression}"`);
  let v: unknown = data?.[m[1]!];
  for (const call of m[2]!.split('.').filter(Boolean)) {
    const list = v as unknown[];
    if (call.startsWith('skip(')) v = list.slice(Number(/\d+/.exec(call)![0]));
    else if (call === 'first()') v = list[0];
    else if (call === 'last()') v = list[list.length - 1];
    else if (call === 'len()') v = list.length;
  }
  return v;
}

/** Replaces %index% in every string of a ResourceGroup's resource_def. */
export function withIndex(value: unknown, index: number, indexVar = '%index%'): unknown {
  if (typeof value === 'string') return value.split(indexVar).join(String(index));
  if (Array.isArray(value)) return value.map((v) => withIndex(v, index, indexVar));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withIndex(v, index, indexVar)]));
  return value;
}

/** Resource names in an order where every resource comes after the ones it refers to. */
export function creationOrder(resources: Record<string, ResourceDef>): string[] {
  const deps = new Map<string, Set<string>>();
  for (const [name, def] of Object.entries(resources)) {
    const set = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (typeof v === 'object' && v !== null) {
        for (const [k, inner] of Object.entries(v)) {
          if (k === 'get_resource' && typeof inner === 'string') set.add(inner);
          else if (k === 'get_attr' && Array.isArray(inner) && typeof inner[0] === 'string') set.add(inner[0]);
          walk(inner);
        }
      }
    };
    walk(def.properties);
    for (const d of [def.depends_on ?? []].flat()) set.add(d);
    for (const d of set) if (!(d in resources)) throw new HeatTemplateError('StackValidationFailed', `Failed to validate: resources.${name}: The specified reference "${d}" (in ${name}) is incorrect.`);
    deps.set(name, set);
  }
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (n: string): void => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'visiting') throw new HeatTemplateError('CircularDependencyException', `Circular Dependency Found: ${n}`);
    state.set(n, 'visiting');
    for (const d of deps.get(n)!) visit(d);
    state.set(n, 'done');
    order.push(n);
  };
  for (const n of Object.keys(resources)) visit(n);
  return order;
}
