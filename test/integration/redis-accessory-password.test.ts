import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderInitConfig } from '../../src/plan/init-config.js';
import { pollUntil } from '../../src/util/poll.js';
import { repoRoot } from '../support/cli.js';
import { ensureRedisServer, freePort } from '../support/redis.js';

/**
 * The example depl.yaml's Redis accessory hands its password to redis-server in a config document on stdin.
 * Any one-line value `depl secrets set` accepts must come out as the password Redis asks for: run the
 * template's own command (Debian's sh and redis-server) with the secret file at a temp path.
 */
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function startTemplateRedis(password: string): Promise<number> {
  const text = renderInitConfig(await readFile(path.join(repoRoot, 'templates', 'depl.example.yaml'), 'utf8'), { app: 'pw', domain: 'pw.localhost', provider: 'local', exampleContext: '.' });
  const template = parse(text) as { accessories: { redis: { command: string[] } } };
  const [shell, flag, script] = template.accessories.redis.command;
  expect([shell, flag]).toEqual(['sh', '-c']);
  const dir = await mkdtemp(path.join(tmpdir(), 'depl-redis-pw-'));
  const secretFile = path.join(dir, 'redis_password');
  await writeFile(secretFile, password, { mode: 0o600 });
  const port = await freePort();
  const local = script!.replaceAll('/run/secrets/redis_password', secretFile).replace('redis-server -', `redis-server - --port ${port} --bind 127.0.0.1 --save ""`);
  const child = spawn('sh', ['-c', local], { cwd: dir, stdio: 'ignore' });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });
  return port;
}

/** What the server at `port` says to AUTH with `password` and a PING, or why it could not be asked. */
async function answers(port: number, password: string): Promise<string> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.call('AUTH', password);
    return await client.ping();
  } catch (error) {
    return (error as Error).message;
  } finally {
    client.disconnect();
  }
}

describe('the example Redis accessory', () => {
  it('takes a password with quotes, backslashes, dollars and spaces exactly as written', async () => {
    await ensureRedisServer();
    const password = `a"b\\c$d 'e\`f\\"g`;
    const port = await startTemplateRedis(password);
    const reply = await pollUntil(async () => {
      const got = await answers(port, password);
      return /ECONNREFUSED|Connection is closed/.test(got) ? undefined : got;
    }, { timeoutMs: 15_000, intervalMs: 50, onTimeout: () => 'never listened' });
    expect(reply).toBe('PONG');
    expect(await answers(port, 'a"b\\c$d')).toMatch(/WRONGPASS|invalid username-password/);
  });
});
