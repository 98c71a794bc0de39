import { parse } from 'yaml';
import { visible } from '../util/terminal-text.js';
import type { ComposeImport, DraftAccessory, DraftService } from './compose-import.js';
import { initTlsSection, type InitTls } from './tls/init-tls.js';
import { yamlComment, yamlText } from './yaml-render.js';

/** Renders the commented depl.yaml that `depl init` writes. Pure: the template text is passed in. */
export interface InitChoices {
  app: string;
  domain: string;
  provider: 'local' | 'openstack';
  /**
   * The project's Designate zone the domain is in, when depl keeps its records (the zero-config domain `depl init`
   * took from Designate); written as provider.dns.zone.
   */
  dnsZone?: string;
  /** The tls: section (src/plan/tls/init-tls.ts initTls); absent: none written, the provider's default applies. */
  tls?: InitTls;
  /**
   * Where the example crawler's build context is, as depl.yaml will name it: `.` inside depl's own
   * repository, else depl's package folder (see exampleContext), so the example builds from any folder.
   */
  exampleContext?: string;
}

/**
 * The example crawler is built from depl's package folder (its sources, workspace manifest and lockfile).
 * From depl's own checkout that is `.`; from anywhere else, the package folder by its absolute path, since
 * a relative path climbing out of the user's folder breaks as soon as the folder moves.
 */
export function exampleContext(configFolder: string, packageFolder: string, relative: (from: string, to: string) => string): string {
  const rel = relative(configFolder, packageFolder);
  if (rel === '') return '.';
  return rel.startsWith('..') ? packageFolder : rel;
}

/** The cloud in clouds.yaml the openstack provider's depl.yaml names (and `depl init` asks Designate through). */
export const INIT_OPENSTACK_CLOUD = 'nectar';

const providers = {
  local: `provider:
  type: local     # each node is a container running sshd and its own dockerd, reached over SSH
  nodes: 3
  subnet: 192.168.77.0/24
  # image: cloud  # nodes like a fresh Nectar Ubuntu image: ssh.user ubuntu with sudo, Docker installed by node-up`,
  openstack: `provider:
  type: openstack
  cloud: ${INIT_OPENSTACK_CLOUD}               # the cloud's name in clouds.yaml (or set OS_CLOUD / OS_* variables)
  template: heat/stack.yaml
  nodes: 3
  parameters:
    image: "NeCTAR Ubuntu 22.04 LTS (Jammy) amd64"
    flavor: m3.small
    # key_name: my-nectar-key # optional: a Nova key pair you made; without it depl uploads
    #                         # .depl/id_ed25519.pub as key pair "depl-<app>"
    # availability_zone: melbourne-qh2  # optional: empty lets the cloud choose; pick a zone your allocation has quota in
    # network: my-network       # optional: empty gives Nectar's classic public network`,
};

/** provider.dns for the zero-config domain: node-up keeps the records, node-down removes them, TLS uses DNS-01. */
const DNS_SECTION = `
  dns:
    # domain: is a name in this Designate zone of the project: node-up points <domain> and *.<domain>
    # at the cluster (A records), node-down removes the ones it made, and HTTPS certificates are
    # issued through DNS-01 in this zone. Remove this section to point a domain of your own instead.
    zone: __DNS_ZONE__`;

function providerText(choices: InitChoices): string {
  if (choices.provider === 'local') return providers.local;
  return choices.dnsZone === undefined ? providers.openstack : `${providers.openstack}${DNS_SECTION}`;
}

/** The placeholders that stand for one value each, with the value each stands for. */
function scalarPlaceholders(choices: InitChoices): Record<string, string> {
  const context = choices.exampleContext ?? '.';
  return {
    __APP__: choices.app,
    __DOMAIN__: choices.domain,
    __SSH_USER__: choices.provider === 'openstack' ? 'ubuntu' : 'root',
    __CRAWLER_CONTEXT__: context,
    __CRAWLER_DOCKERFILE__: `${context === '.' ? '' : `${context}/`}templates/crawler.Dockerfile`,
    ...(choices.dnsZone !== undefined ? { __DNS_ZONE__: choices.dnsZone } : {}),
    ...(choices.tls?.mode === 'acme' && choices.tls.email !== undefined ? { __TLS_EMAIL__: choices.tls.email } : {}),
  };
}

// a function replacement: a value's `$&` or `$'` is text, not a pattern for String.replace; the tls: section and
// a blank line, or nothing, take its placeholder's whole line
const withSections = (template: string, choices: InitChoices) => {
  const tls = initTlsSection(choices.tls);
  return template.replace('__PROVIDER__', () => providerText(choices)).replace(/^__TLS__\n/m, () => (tls === '' ? '' : `${tls}\n`));
};

/** The template with each value in its place, rendered as a YAML scalar: whatever it holds, it stays that one scalar. */
export function renderInitConfig(template: string, choices: InitChoices): string {
  let text = withSections(template, choices);
  for (const [placeholder, value] of Object.entries(scalarPlaceholders(choices))) text = text.replaceAll(placeholder, () => yamlText(value));
  return text;
}

/**
 * What renderInitConfig's text must read back as: the template's own document (placeholders read as plain
 * words) with each placeholder's value in its place. Made without rendering any value, so a value that broke
 * out of its scalar would show as a difference.
 */
export function intendedInitDocument(template: string, choices: InitChoices): Record<string, unknown> {
  const values = scalarPlaceholders(choices);
  const put = (node: unknown): unknown => {
    if (typeof node === 'string') return Object.hasOwn(values, node) ? values[node] : node;
    if (Array.isArray(node)) return node.map(put);
    if (typeof node === 'object' && node !== null) return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, put(v)]));
    return node;
  };
  return put(parse(withSections(template, choices))) as Record<string, unknown>;
}

/** An app made from what `depl init` found in the folder: a Compose file, or a lone Dockerfile. */
export interface AppDraft {
  services: Record<string, DraftService>;
  accessories: Record<string, DraftAccessory>;
  /** Secret names, in the order first met. */
  secrets: string[];
  notTranslated: string[];
}

const SERVICES_SECTION = /^# The services of one version/m;

function splitTemplate(template: string): { head: string } {
  const at = template.search(SERVICES_SECTION);
  if (at < 0) throw new Error('the depl.yaml template has no services section');
  return { head: template.slice(0, at) };
}

/** The sections an imported app adds after the template's head, empty ones left out. */
function appSections(app: AppDraft): Record<string, unknown> {
  return {
    services: app.services,
    ...(Object.keys(app.accessories).length > 0 ? { accessories: app.accessories } : {}),
    ...(app.secrets.length > 0 ? { secrets: app.secrets } : {}),
    config: {},
  };
}

/**
 * The depl.yaml for an imported app: the template's commented head (app, domain, provider, ssh, images),
 * then the app's own services, accessories and secrets, and a comment listing what was not translated.
 * Every value is rendered by the YAML library and every comment kept to its line (see yaml-render.ts):
 * Compose keys and values are the file's author's, not depl's.
 */
export function renderImportedConfig(template: string, choices: InitChoices, app: AppDraft, source: string): string {
  const head = renderInitConfig(splitTemplate(template).head, choices);
  const sections = appSections(app);
  const from = visible(source);
  const parts = [
    `# The services of one version, from ${from}. Each runs as a swarm service <app>-<version>-<service>;`,
    '# one with http: true is reached through the edge at <version>.<domain>, and its health path must answer',
    '# 200 before the version counts as installed. "from:" runs another service\'s image with its own command.',
    yamlText({ services: sections.services }),
    '',
  ];
  if (sections.accessories !== undefined) {
    parts.push(
      `# Shared services that outlive versions (from ${from}'s image services with a volume): created once,`,
      '# pinned to one node so their volume stays with them, reached by their name on the app\'s network.',
      yamlText({ accessories: sections.accessories }),
      '',
    );
  }
  if (sections.secrets !== undefined) {
    parts.push(
      '# Secrets, by name only: their values never live in this file. Set each one before `depl buildinst`',
      '# with `depl secrets set NAME` (or DEPL_SECRET_<NAME> in the environment); services read them at',
      '# /run/secrets/<name> (the *_FILE variables above point there).',
      yamlText({ secrets: sections.secrets }),
      '',
    );
  }
  if (app.notTranslated.length > 0) {
    parts.push(`# Not translated from ${from} (depl has no equivalent, or does it another way):`, ...app.notTranslated.map((line) => yamlComment(`  - ${line}`)), '');
  }
  parts.push(
    '# A JSON document mounted in every service at /run/depl/config.json (a swarm config), named by the DEPL_CONFIG_FILE',
    '# variable; the images\' own commands run as written. A service with configArg: true also gets --config <its URL>.',
    yamlText({ config: sections.config }),
    '',
  );
  return `${head}${parts.join('\n')}`;
}

/** What renderImportedConfig's text must read back as: the template's head as intended, then the app's sections. */
export function intendedImportedDocument(template: string, choices: InitChoices, app: AppDraft): Record<string, unknown> {
  return { ...intendedInitDocument(splitTemplate(template).head, choices), ...appSections(app) };
}

/** One HTTP service built from the folder's Dockerfile. */
export function dockerfileApp(opts: { dockerfile: string; port: number; health: string; replicas?: number }): AppDraft {
  return {
    services: { web: { build: { context: '.', dockerfile: opts.dockerfile }, port: opts.port, http: true, health: opts.health, replicas: opts.replicas ?? 2 } },
    accessories: {},
    secrets: [],
    notTranslated: [],
  };
}

export function appFromCompose(imported: ComposeImport): AppDraft {
  return {
    services: imported.services,
    accessories: imported.accessories,
    secrets: [...new Set([...imported.secrets.map((s) => s.name), ...imported.secretImports.map((s) => s.name), ...imported.declaredSecrets])],
    notTranslated: [
      ...imported.secrets.map((s) => `services.${s.service}.environment.${s.env}: became secret "${s.name}" (its value was not copied); the service reads it from ${s.env}_FILE`),
      ...imported.notTranslated,
    ],
  };
}
