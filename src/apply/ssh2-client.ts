import { createRequire } from 'node:module';
import type ssh2 from 'ssh2';

/**
 * The parts of ssh2 a command that connects uses: its client and its key parser. ssh2's index also loads its
 * SSH server, key generator and HTTP(S) agents, and with them Node's http, https and tls: a tenth of what
 * loading ssh2 costs a `depl switch`, for nothing it runs. The key generator (keys are made once, by node-up
 * or the first command) is loaded from the index when it is asked for.
 */
const load = createRequire(import.meta.url);

export type Client = ssh2.Client;
export const Client = load('ssh2/lib/client.js') as typeof ssh2.Client;

export const parseKey = (load('ssh2/lib/protocol/keyParser.js') as Pick<typeof ssh2.utils, 'parseKey'>).parseKey;

export function generateKeyPairSync(...args: Parameters<typeof ssh2.utils.generateKeyPairSync>): ReturnType<typeof ssh2.utils.generateKeyPairSync> {
  return (load('ssh2') as typeof ssh2).utils.generateKeyPairSync(...args);
}
