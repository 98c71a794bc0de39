import type { SecretDocument, SwarmSecretRef } from '../../src/plan/services.js';
import { heldFromLabels, type HeldCredential } from '../../src/plan/tls/renewer-credential.js';
import type { MountableCredentialHolder } from '../../src/workflows/tls/renewer-credential.js';
import type { FakeSwarm } from './fake-cluster.js';

/**
 * The swarm secrets holding the renewal task's node-up credential, on the fake cluster's swarm (its `secrets` and
 * `secretLabels`), removed as the swarm removes one: refused while a service's spec mounts it, and while a task being
 * replaced still does (`lingering`: the secrets such a task holds, which the test lets go of when the task is gone).
 */
export class FakeCredentialSecrets implements MountableCredentialHolder {
  readonly lingering = new Set<string>();
  constructor(private readonly swarm: FakeSwarm) {}

  async held(): Promise<Array<HeldCredential & { ref: SwarmSecretRef }>> {
    return [...this.swarm.secretLabels].flatMap(([name, labels]) => {
      const held = this.swarm.secrets.has(name) ? heldFromLabels(name, labels) : undefined;
      return held === undefined ? [] : [{ ...held, ref: { id: this.swarm.secrets.get(name)!, name } }];
    });
  }

  async store(document: SecretDocument): Promise<void> {
    this.swarm.calls.push(`ensure-secret ${document.name}`);
    if (this.swarm.secrets.has(document.name)) return;
    this.swarm.secrets.set(document.name, `secret-${this.swarm.secrets.size + 1}-${document.name}`);
    this.swarm.secretLabels.set(document.name, { ...document.labels });
  }

  async retire(secret: string): Promise<boolean> {
    if (!this.swarm.secrets.has(secret)) return true;
    if (this.lingering.has(secret) || this.mountedBySpec(secret)) return false;
    this.swarm.calls.push(`remove-secret ${secret}`);
    this.swarm.secrets.delete(secret);
    this.swarm.secretLabels.delete(secret);
    return true;
  }

  /** The secrets a service's spec mounts, by name. */
  mountedBySpec(secret: string): boolean {
    return [...this.swarm.specs.values()].some((spec) => {
      const container = (spec as { TaskTemplate?: { ContainerSpec?: { Secrets?: Array<{ SecretName?: string }> } } }).TaskTemplate?.ContainerSpec;
      return (container?.Secrets ?? []).some((s) => s.SecretName === secret);
    });
  }
}
