import { UserError } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { ensureKeyPair } from '../ssh-keypair.js';
import { samePublicKey, type NovaClient } from './nova.js';

/**
 * The key pair `depl-<app>` holding the public half of ssh.key, uploaded once, so new servers let depl in.
 * One of that name holding another key is refused rather than replaced: other servers may rely on it.
 */
export async function ensureManagedKeypair(nova: NovaClient, key: { name: string; file: string }, log: Logger): Promise<string> {
  const { name: keyName, file: keyFile } = key;
  const { publicKey, generated } = await ensureKeyPair(keyFile, keyName);
  if (generated) log.step(`SSH key pair generated: ${keyFile}`);
  const existing = await nova.keypair(keyName);
  if (existing === undefined) {
    await nova.createKeypair(keyName, publicKey);
    log.step(`key pair ${keyName} uploaded (the public half of ${keyFile})`);
  } else if (!samePublicKey(existing.public_key, publicKey)) {
    throw new UserError(
      `the cloud's key pair "${keyName}" holds another public key than ${keyFile}.pub`,
      `Point ssh.key at the matching private key, set provider.parameters.key_name to a key pair holding ${keyFile}.pub, or delete the old one: openstack keypair delete ${keyName}`,
      'KEYPAIR_MISMATCH',
    );
  }
  return keyName;
}
