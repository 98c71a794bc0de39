import { createHash, createHmac } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { silentLogger } from '../util/log.js';
import { withFileLock } from './local/file-lock.js';

/**
 * An OpenSSH-format known_hosts file (`.depl/known_hosts`), so `ssh -o UserKnownHostsFile=...` agrees with
 * depl about every node. Keys are trusted on first use and pinned afterwards.
 */

/** `host` on port 22, `[host]:port` otherwise, as OpenSSH writes it. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key type is the first string of the SSH wire-format key blob. */
export function keyType(blob: Buffer): string {
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString('ascii');
}

export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

interface Entry {
  patterns: string;
  type: string;
  key: string;
}

function parse(text: string): Entry[] {
  const entries: Entry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.length === 0 || line.startsWith('#') || line.startsWith('@')) continue;
    const [patterns, type, key] = line.split(/\s+/);
    if (patterns && type && key) entries.push({ patterns, type, key });
  }
  return entries;
}

function matches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  return patterns.split(',').includes(name);
}

export type HostKeyVerdict =
  | { kind: 'known' }
  | { kind: 'unknown' }
  | { kind: 'changed'; expected: string[] };

/** What `trust` did: the key matched the record, was recorded now (first use), or differs from the record. */
export type TrustVerdict = { kind: 'known' } | { kind: 'recorded'; fingerprint: string } | { kind: 'changed'; expected: string[] };

export class KnownHosts {
  /** Changes from parallel connections in this process are serialised; other processes by a lock folder. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly file: string) {}

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue
      .then(() => mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 }))
      .then(() => withFileLock(`${this.file}.lock`, `${path.basename(this.file)}`, silentLogger, fn, 30_000, 25));
    this.queue = next.catch(() => {});
    return next;
  }

  /** The whole file, rewritten beside itself and renamed over it (0600), so readers never see half. */
  private async replace(text: string): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const temp = `${this.file}.tmp-${process.pid}`;
    await writeFile(temp, text, { mode: 0o600 });
    await chmod(temp, 0o600);
    await rename(temp, this.file);
  }

  private async entries(): Promise<Entry[]> {
    return parse(await readFile(this.file, 'utf8').catch(() => ''));
  }

  /** Key types recorded for the host, so the SSH handshake asks for a key we can compare. */
  async typesFor(host: string, port: number): Promise<string[]> {
    const name = knownHostsName(host, port);
    return [...new Set((await this.entries()).filter((e) => matches(e.patterns, name)).map((e) => e.type))];
  }

  async check(host: string, port: number, blob: Buffer): Promise<HostKeyVerdict> {
    const name = knownHostsName(host, port);
    const mine = (await this.entries()).filter((e) => matches(e.patterns, name));
    if (mine.length === 0) return { kind: 'unknown' };
    const key = blob.toString('base64');
    if (mine.some((e) => e.type === keyType(blob) && e.key === key)) return { kind: 'known' };
    return { kind: 'changed', expected: mine.map((e) => `${e.type} ${fingerprint(Buffer.from(e.key, 'base64'))}`) };
  }

  async add(host: string, port: number, blob: Buffer): Promise<void> {
    await this.serialised(async () => this.append(host, port, blob));
  }

  private async append(host: string, port: number, blob: Buffer): Promise<void> {
    const text = await readFile(this.file, 'utf8').catch(() => '');
    const line = `${knownHostsName(host, port)} ${keyType(blob)} ${blob.toString('base64')}\n`;
    await this.replace(text.length === 0 || text.endsWith('\n') ? text + line : `${text}\n${line}`);
  }

  /**
   * Trust on first use, race-free: under the lock, the record is read again; a host with no record gets
   * this key (one key per host), a host with one is checked against it. Of two first connections at once,
   * in this process or another, whichever records first wins and the other is checked against its key.
   */
  async trust(host: string, port: number, blob: Buffer): Promise<TrustVerdict> {
    const quick = await this.check(host, port, blob);
    if (quick.kind !== 'unknown') return quick;
    return this.serialised(async () => {
      const now = await this.check(host, port, blob);
      if (now.kind !== 'unknown') return now;
      await this.append(host, port, blob);
      return { kind: 'recorded', fingerprint: `${keyType(blob)} ${fingerprint(blob)}` };
    });
  }

  /** Forgets a host's keys: the machine at that address was replaced on purpose (node-down, a recreated node). */
  async forget(host: string, port: number): Promise<void> {
    const name = knownHostsName(host, port);
    await this.serialised(async () => {
      const text = await readFile(this.file, 'utf8').catch(() => null);
      if (text === null) return;
      const kept = text.split('\n').filter((raw) => {
        const patterns = raw.trim().split(/\s+/)[0] ?? '';
        return raw.trim().length === 0 || raw.trim().startsWith('#') || !matches(patterns, name);
      });
      await this.replace(kept.filter((l) => l.length > 0).map((l) => l + '\n').join(''));
    });
  }
}
