import { heldFromLabels, RENEWER_CREDENTIAL_LABELS, type HeldCredential } from '../../plan/tls/renewer-credential.js';
import type { SecretDocument, SwarmSecretRef } from '../../plan/services.js';
import type { Engine } from '../docker.js';
import { ensureSwarmSecret, labelledSecrets } from '../swarm.js';

/**
 * The swarm secrets that hold the renewal task's node-up credential (src/plan/tls/renewer-credential.ts), found by
 * their labels: node-up stores and retires them, buildinst mounts the current one into the task.
 */
export async function heldRenewerCredentials(engine: Engine, app: string): Promise<Array<HeldCredential & { ref: SwarmSecretRef }>> {
  const listed = await labelledSecrets(engine, app, RENEWER_CREDENTIAL_LABELS.credential);
  return listed.flatMap((s) => {
    const held = heldFromLabels(s.name, s.labels);
    return held === undefined ? [] : [{ ...held, ref: { id: s.id, name: s.name } }];
  });
}

export function swarmCredentialHolder(engine: Engine, app: string) {
  return {
    held: () => heldRenewerCredentials(engine, app),
    async store(document: SecretDocument) {
      await ensureSwarmSecret(engine, document);
    },
    async retire(secret: string) {
      try {
        await engine.docker.getSecret(secret).remove();
        return true;
      } catch (error) {
        const status = (error as { statusCode?: number }).statusCode;
        if (status === 404) return true;
        // swarm refuses to remove a secret a service mounts (the running task's, until buildinst gives it the new one)
        if (status === 400) return false;
        throw error;
      }
    },
  };
}

/** The same, on a cluster whose Engine connection is opened when first asked for (the port's, for `depl tls renew`). */
export function swarmCredentialHolderOn(cluster: { engine(): Promise<Engine> }, app: string): ReturnType<typeof swarmCredentialHolder> {
  const on = async () => swarmCredentialHolder(await cluster.engine(), app);
  return {
    held: async () => (await on()).held(),
    store: async (document) => (await on()).store(document),
    retire: async (secret) => (await on()).retire(secret),
  };
}
