import { AUTOSCALER_SERVICE } from '../config/schema.js';
import { CONTROLLER_RELEASE_DIR, controllerGateSpec, controllerServiceSpec, controllerSettingsSchema } from './autoscale.js';
import { containerOf, labelsOf, mountsDockerSocket, sameMounts, type PresentSpec } from './inspected-spec.js';
import { LABELS, type SecretMount, type ServiceSpec } from './services.js';

/**
 * An autoscale controller an earlier depl installed, as this depl would install it. Before the engine gates
 * (src/plan/autoscale-gate.ts) a controller mounted the manager's Docker socket: whoever took it over (through
 * the metrics it reads) was root on the manager. Later ones hid the ACME account where it used to be, not the
 * folder it is in now. Each is planned again from what its spec holds (its settings, network, secrets, branch and
 * state root), with this depl's mounts, its version's gate beside it, and this depl's controller image (an
 * earlier image's controller talks to the socket, and may carry no gate program): `image` is left empty here and
 * set to that image when it is applied. A controller whose spec this depl cannot read is reported, not guessed at.
 */
export type ControllerUpgrade =
  | { kind: 'controller'; service: string; version: string; gate: ServiceSpec; controller: ServiceSpec; why: string }
  | { kind: 'report'; service: string; why: string; hint: string };

/** null: `present` is not one of this app's controllers, or it already runs as this depl plans it. */
export function planControllerUpgrade(app: string, present: PresentSpec): ControllerUpgrade | null {
  const labels = labelsOf(present.spec);
  if (labels[LABELS.app] !== app || labels[LABELS.service] !== AUTOSCALER_SERVICE) return null;
  const version = labels[LABELS.version] ?? '?';
  const container = containerOf(present.spec);
  const hint = `Run \`depl buildinst --version ${version}\` again (it installs its controller anew), or \`depl prune\` it if it is no longer needed.`;
  const report = (why: string): ControllerUpgrade => ({ kind: 'report', service: present.name, why: `the autoscale controller ${present.name} ${why}${mountsDockerSocket(present.spec) ? ', and it still holds the manager\'s Docker socket' : ''}`, hint });
  const args = Array.isArray(container.Args) ? (container.Args as unknown[]) : [];
  const at = args.indexOf('--settings');
  let raw: unknown;
  try {
    raw = JSON.parse(typeof args[at + 1] === 'string' && at >= 0 ? (args[at + 1] as string) : 'null');
  } catch {
    return report('has settings that are not JSON');
  }
  const parsed = controllerSettingsSchema.safeParse(raw);
  if (!parsed.success) return report(`has settings this depl cannot read (${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? ''})`);
  const settings = parsed.data;
  if (settings.app !== app || settings.version !== version) return report(`has settings for ${settings.app}-${settings.version}`);
  const release = Array.isArray(container.Mounts) ? (container.Mounts as Array<{ Source?: string; Target?: string }>).find((m) => m.Target === CONTROLLER_RELEASE_DIR) : undefined;
  const root = release?.Source?.endsWith(`/${app}`) === true ? release.Source.slice(0, -app.length - 1) : undefined;
  if (root === undefined || root.length === 0) return report(`mounts no release folder at ${CONTROLLER_RELEASE_DIR}`);
  const networks = (present.spec.TaskTemplate as { Networks?: Array<{ Target?: string }> } | undefined)?.Networks;
  const network = networks?.[0]?.Target;
  if (network === undefined) return report('is on no network');
  const branch = labels[LABELS.branch];
  const controller = controllerServiceSpec({
    settings, image: '', network, secrets: Array.isArray(container.Secrets) ? (container.Secrets as SecretMount[]) : [], ...(branch !== undefined ? { branch } : {}), root,
  });
  if (!mountsDockerSocket(present.spec) && sameMounts(container.Mounts, controller.TaskTemplate.ContainerSpec.Mounts ?? [])) return null;
  return {
    kind: 'controller',
    service: present.name,
    version,
    gate: controllerGateSpec({ settings, image: '', ...(branch !== undefined ? { branch } : {}), root }),
    controller,
    why: mountsDockerSocket(present.spec)
      ? `the autoscale controller ${present.name} holds the manager's Docker socket (an earlier depl's spec): it scales through its version's engine gate from now on`
      : `the autoscale controller ${present.name} sees more of the app's folder than it needs (an earlier depl's spec): it is given this depl's mounts`,
  };
}
