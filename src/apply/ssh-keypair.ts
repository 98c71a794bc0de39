import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateKeyPairSync, parseKey } from './ssh2-client.js';
import { UserError } from '../errors.js';

export interface KeyPair {
  privateKeyFile: string;
  privateKey: Buffer;
  /** One OpenSSH line: `ssh-ed25519 AAAA... comment`. */
  publicKey: string;
}

/**
 * The cluster's SSH key (ssh.key in depl.yaml, default .depl/id_ed25519). Generated when missing, with
 * mode 0600; an existing key with looser permissions is refused, as OpenSSH would.
 */
export async function ensureKeyPair(privateKeyFile: string, comment: string): Promise<KeyPair & { generated: boolean }> {
  const publicFile = `${privateKeyFile}.pub`;
  const existing = await readFile(privateKeyFile).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (existing) {
    const mode = (await stat(privateKeyFile)).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new UserError(`the SSH key ${privateKeyFile} is readable by others (mode ${mode.toString(8)})`, `chmod 600 ${privateKeyFile}`, 'SSH_KEY_MODE');
    }
    const parsed = parseKey(existing);
    if (parsed instanceof Error) {
      throw new UserError(`cannot read the SSH key ${privateKeyFile}: ${parsed.message}`, 'Point ssh.key in depl.yaml at an unencrypted OpenSSH private key, or delete it to have one generated.', 'SSH_KEY_INVALID');
    }
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    const publicKey = (await readFile(publicFile, 'utf8').catch(() => null))?.trim()
      ?? `${key!.type} ${key!.getPublicSSH().toString('base64')} ${comment}`;
    return { privateKeyFile, privateKey: existing, publicKey, generated: false };
  }
  await mkdir(path.dirname(privateKeyFile), { recursive: true, mode: 0o700 });
  const pair = generateParseableKeyPair(comment);
  await writeFile(privateKeyFile, pair.private, { mode: 0o600, flag: 'wx' });
  await chmod(privateKeyFile, 0o600);
  await writeFile(publicFile, pair.public.trim() + '\n', { mode: 0o644 });
  return { privateKeyFile, privateKey: Buffer.from(pair.private), publicKey: pair.public.trim(), generated: true };
}

/**
 * ssh2's generator makes an ed25519 key that its own parser rejects ("Malformed OpenSSH private key")
 * about once in 200 (measured: 15 of 3,000). Such a key would fail at the first connection, so it is
 * replaced before it is ever written.
 */
export function generateParseableKeyPair(comment = ''): { private: string; public: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pair = generateKeyPairSync('ed25519', { comment });
    const parsed = parseKey(pair.private);
    if (!(parsed instanceof Error) && !Array.isArray(parsed)) return pair;
  }
  throw new Error('ssh2 kept generating ed25519 keys it cannot parse');
}
