import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fingerprint, keyType, KnownHosts, knownHostsName } from '../../../src/apply/known-hosts.js';
import { generateParseableKeyPair } from '../../../src/apply/ssh-keypair.js';

const blobOf = (): Buffer => {
  const parsed = ssh2.utils.parseKey(generateParseableKeyPair().private);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new Error('bad key');
  return parsed.getPublicSSH();
};

describe('known_hosts: trust on first use, refuse on change', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-kh-'));
    file = path.join(dir, '.depl', 'known_hosts');
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('writes OpenSSH names: bare host on 22, [host]:port otherwise', () => {
    expect(knownHostsName('10.0.0.1', 22)).toBe('10.0.0.1');
    expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });

  it('records an unknown key as an OpenSSH line (0600), then knows it', async () => {
    const kh = new KnownHosts(file);
    const blob = blobOf();
    expect(await kh.check('10.0.0.1', 22, blob)).toEqual({ kind: 'unknown' });
    await kh.add('10.0.0.1', 22, blob);
    expect(await readFile(file, 'utf8')).toBe(`10.0.0.1 ssh-ed25519 ${blob.toString('base64')}\n`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await kh.check('10.0.0.1', 22, blob)).toEqual({ kind: 'known' });
    expect(await kh.typesFor('10.0.0.1', 22)).toEqual(['ssh-ed25519']);
    expect(keyType(blob)).toBe('ssh-ed25519');
  });

  it('reports a different key for a known host as changed, with the recorded fingerprint', async () => {
    const kh = new KnownHosts(file);
    const old = blobOf();
    await kh.add('10.0.0.1', 22, old);
    expect(await kh.check('10.0.0.1', 22, blobOf())).toEqual({ kind: 'changed', expected: [`ssh-ed25519 ${fingerprint(old)}`] });
    expect(await kh.check('10.0.0.2', 22, blobOf())).toEqual({ kind: 'unknown' });
    expect(await kh.check('10.0.0.1', 2222, blobOf())).toEqual({ kind: 'unknown' });
  });

  it('understands hashed host names and comma lists written by OpenSSH', async () => {
    const blob = blobOf();
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('10.0.0.5').digest('base64');
    const other = path.join(dir, 'kh');
    await writeFile(other, `# comment\n|1|${salt.toString('base64')}|${hash} ssh-ed25519 ${blob.toString('base64')}\nalpha,10.0.0.6 ssh-ed25519 ${blob.toString('base64')}\n`);
    const kh = new KnownHosts(other);
    expect(await kh.check('10.0.0.5', 22, blob)).toEqual({ kind: 'known' });
    expect(await kh.check('10.0.0.6', 22, blob)).toEqual({ kind: 'known' });
  });

  it('trusts on first use race-free: of two different keys offered at once, the first recorded wins', async () => {
    const [a, b] = [blobOf(), blobOf()];
    // separate objects on one file stand for two depl processes
    const verdicts = await Promise.all([new KnownHosts(file).trust('10.0.0.9', 22, a), new KnownHosts(file).trust('10.0.0.9', 22, b)]);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(1);
    const winner = lines[0]!.endsWith(a.toString('base64')) ? 0 : 1;
    expect(verdicts[winner]).toEqual({ kind: 'recorded', fingerprint: `ssh-ed25519 ${fingerprint(winner === 0 ? a : b)}` });
    expect(verdicts[1 - winner]).toMatchObject({ kind: 'changed' });
    expect(await new KnownHosts(file).trust('10.0.0.9', 22, winner === 0 ? a : b)).toEqual({ kind: 'known' });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
  });

  it('forgets only the given host, and parallel appends never interleave', async () => {
    const kh = new KnownHosts(file);
    await Promise.all(Array.from({ length: 8 }, (_, i) => kh.add(`10.0.0.${i + 1}`, 22, blobOf())));
    await kh.forget('10.0.0.3', 22);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(7);
    expect(lines.every((l) => /^10\.0\.0\.\d ssh-ed25519 [A-Za-z0-9+/=]+$/.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith('10.0.0.3 '))).toBe(false);
  });
});

describe('the cluster key pair', () => {
  it('is always one ssh2 can read back (its generator sometimes makes one it cannot)', () => {
    for (let i = 0; i < 400; i++) {
      const parsed = ssh2.utils.parseKey(generateParseableKeyPair('t').private);
      expect(parsed instanceof Error || Array.isArray(parsed)).toBe(false);
    }
  });
});
