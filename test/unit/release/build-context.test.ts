import { generateKeyPairSync } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { appendFile, mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextFiles, packContext, readBuildContext, CONTEXT_DOCKERFILE } from '../../../src/apply/build-context.js';
import { generateParseableKeyPair } from '../../../src/apply/ssh-keypair.js';
import { renderSecretsFile } from '../../../src/plan/secrets.js';
import { demux } from '../../../src/apply/swarm.js';
import { parseConfig } from '../../../src/config/load.js';
import { UserError } from '../../../src/errors.js';
import {
  contextExclusions, contextWithinOperatorPath, isExcludedFromContext, secretByName, secretInHead,
} from '../../../src/plan/build-context.js';
import { backupFilePattern, operatorPaths, projectFacts } from '../../../src/plan/operator-files.js';
import { silentLogger } from '../../../src/util/log.js';
import { redact } from '../../../src/util/redact.js';
import { packageRoot } from '../../../src/util/paths.js';
import { buildinst } from '../../../src/workflows/buildinst.js';
import { buildinstInputsFor } from '../../../src/workflows/command-inputs.js';

describe('build context', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-ctx-'));
    for (const file of ['a.txt', 'logs/x.log', 'logs/keep.log', 'src/m.ts', 'src/m.test.ts']) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), file);
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('honours .dockerignore patterns and exceptions', async () => {
    await writeFile(path.join(dir, '.dockerignore'), 'logs\n!logs/keep.log\n**/*.test.ts\n');
    expect(await contextFiles(dir)).toEqual(['.dockerignore', 'a.txt', 'logs/keep.log', 'src/m.ts']);
  });

  it('sends the repository without node_modules, tests or local state, and finds no secret in it', async () => {
    const context = await readBuildContext(packageRoot, { label: 'the crawler' });
    const files = context.files;
    expect(files).toContain('package.json');
    expect(files).toContain('package-lock.json');
    expect(files).toContain('crawler/package.json');
    expect(files.some((f) => f.startsWith('crawler/src/'))).toBe(true);
    expect(files.filter((f) => /^(node_modules|dist|test|\.git|\.depl)\/|(^|\/)(node_modules|dist)\//.test(f))).toEqual([]);
  });
});

/** depl.yaml's facts for a project in `root` whose config file is `configFile` (any name, as --config allows). */
const project = (root: string, configFile = path.join(root, 'depl.yaml'), extra = '') => projectFacts({
  config: parseConfig(`app: shop\ndomain: shop.test\nservices: { web: { build: { context: ., dockerfile: Dockerfile } } }\naccessories: { redis: { image: redis, volume: "d:/data" } }\n${extra}`),
  file: configFile,
  root,
});

describe("what depl leaves out of every build context (the rule, as data)", () => {
  const root = '/home/ana/shop';
  const facts = project(root, '/home/ana/shop/deploy/prod.yaml', 'ssh: { key: keys/cluster }\ntls: { mode: files, cert: certs/site.pem, key: certs/site.key }\n');

  it('names the operator\'s files relative to a context that holds them, and none outside it', () => {
    const atRoot = contextExclusions(root, operatorPaths(facts), backupFilePattern('shop', ['redis']));
    expect(atRoot.paths).toEqual(['.depl', 'ansible/generated_hosts.ini', 'certs/site.key', 'certs/site.pem', 'clouds.json', 'clouds.yaml', 'clouds.yml',
      'deploy/prod.yaml', 'keys/cluster', 'keys/cluster.pub', 'secure.json', 'secure.yaml', 'secure.yml']);
    // a context in a subfolder holds none of them; one above the project holds them under the project's folder
    expect(contextExclusions(`${root}/web`, operatorPaths(facts)).paths).toEqual([]);
    expect(contextExclusions('/home/ana', operatorPaths(facts)).paths).toContain('shop/.depl');
  });

  it('leaves out a path, what is under it, any .depl folder, and depl backups, but not look-alikes', () => {
    const rules = contextExclusions(root, operatorPaths(facts), backupFilePattern('shop', ['redis']));
    for (const file of ['.depl', '.depl/id_ed25519', '.depl/backups/shop-redis-20261130-031500-before-restore.tar', 'deploy/prod.yaml', 'keys/cluster',
      'vendor/other/.depl/secrets', 'shop-redis-20261130-031500.tar', 'old/shop-redis-20261130-031500-2.tar', 'shop-redis-20261130-031500.tar.part-42']) {
      expect(isExcludedFromContext(file, rules), file).toBe(true);
    }
    for (const file of [CONTEXT_DOCKERFILE, '.deplx/a', 'deploy/prod.yaml.example', 'keys/cluster-notes.md', 'deploy/staging.yaml', 'shop-web-20261130-031500.tar', 'depl.yaml']) {
      expect(isExcludedFromContext(file, rules), file).toBe(false);
    }
  });

  it('knows a context that lies inside the operator\'s folder', () => {
    expect(contextWithinOperatorPath(`${root}/.depl/hooks`, operatorPaths(facts))).toBe(`${root}/.depl`);
    expect(contextWithinOperatorPath(root, operatorPaths(facts))).toBeNull();
  });

  it('recognises private keys and depl\'s secrets file by their first bytes, and OpenSSH key names', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const heads = {
      pkcs8: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      pkcs1: rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
      encrypted: rsa.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }).toString(),
      openssh: generateParseableKeyPair().private,
      pkcs12Dump: `Bag Attributes\n    localKeyID: 01\nKey Attributes: <No Attributes>\n${rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()}`,
      pgp: '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQdGBF...\n',
      putty: 'PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n',
      secrets: renderSecretsFile([{ name: 'token', value: 'v', changedAt: null }]),
    };
    for (const [kind, head] of Object.entries(heads)) expect(secretInHead('f', head), kind).not.toBeNull();
    expect(secretInHead('f', heads.openssh)!.what).toBe('a private key (BEGIN OPENSSH PRIVATE KEY)');
    expect(secretInHead('f', heads.secrets)!.what).toBe("a copy of depl's secrets file");
    const harmless = {
      publicKey: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      certificate: '-----BEGIN CERTIFICATE-----\nMIIB...\n',
      parserSource: "const marker = '-----BEGIN OPENSSH PRIVATE KEY-----';\n",
      readme: 'Put your key (-----BEGIN PRIVATE KEY----- ...) in the vault.\n',
    };
    for (const [kind, head] of Object.entries(harmless)) expect(secretInHead('f', head), kind).toBeNull();
    expect(secretByName('home/.ssh/id_ed25519')).toEqual({ file: 'home/.ssh/id_ed25519', what: 'an SSH private key (named id_ed25519)' });
    expect(secretByName('id_rsa')).not.toBeNull();
    expect(secretByName('id_rsa.pub')).toBeNull();
    expect(secretByName('docs/id_rsa.md')).toBeNull();
  });
});

describe('a project folder sent as a build context', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'depl-ctx-project-'));
    const files: Record<string, string> = {
      'Dockerfile': 'FROM scratch\nCOPY . /app\n',
      'server.js': 'console.log(1)\n',
      'public/index.html': '<p>hi</p>\n',
      'depl.yaml': 'app: shop\n',
      '.depl/id_ed25519': generateParseableKeyPair().private,
      '.depl/id_ed25519.pub': 'ssh-ed25519 AAAA depl\n',
      '.depl/secrets': renderSecretsFile([{ name: 'token', value: 'hunter2', changedAt: null }]),
      '.depl/known_hosts': '[192.168.77.11]:22 ssh-ed25519 AAAA\n',
      '.depl/inventory.json': '{}\n',
      '.depl/backups/shop-redis-20261130-031500-before-restore.tar': 'tar',
      'shop-redis-20261130-031500.tar': 'an old backup in the project folder',
      'ansible/generated_hosts.ini': '[managers]\n',
      'clouds.yaml': 'clouds: {}\n',
      // the user tries to send depl's files anyway: later lines win in .dockerignore, but not over depl
      '.dockerignore': '*.md\n!.depl\n!.depl/**\n!depl.yaml\n!*.tar\n!ansible/generated_hosts.ini\n!clouds.yaml\n',
    };
    for (const [file, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(root, file)), { recursive: true });
      await writeFile(path.join(root, file), text);
    }
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("sends the app's files and none of depl's, whatever .dockerignore re-includes", async () => {
    const context = await readBuildContext(root, { label: 'services.web.build.context', project: project(root) });
    expect(context.files).toEqual(['.dockerignore', 'Dockerfile', 'public/index.html', 'server.js']);
    // the tar holds exactly those, and the Dockerfile under depl's name
    const { stream } = await packContext(context, path.join(root, 'Dockerfile'));
    expect(await tarNames(stream)).toEqual([...context.files, CONTEXT_DOCKERFILE].sort());
  });

  it('leaves out the config file by its own name (--config), wherever in the context it is', async () => {
    await mkdir(path.join(root, 'deploy'), { recursive: true });
    await writeFile(path.join(root, 'deploy', 'prod.yaml'), 'app: shop\n');
    const context = await readBuildContext(root, { label: 'services.web.build.context', project: project(root, path.join(root, 'deploy', 'prod.yaml')) });
    expect(context.files).not.toContain('deploy/prod.yaml');
    expect(context.files).toContain('depl.yaml'); // not this run's config: an ordinary file of the app here
    await rm(path.join(root, 'deploy'), { recursive: true });
  });

  it('refuses a context that still holds a private key or a copy of the secrets file, naming each and the fix', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await mkdir(path.join(root, 'config'), { recursive: true });
    await writeFile(path.join(root, 'config', 'tls.pem'), rsa);
    await writeFile(path.join(root, 'config', 'secrets.bak'), renderSecretsFile([{ name: 'token', value: 'hunter2', changedAt: null }]));
    await writeFile(path.join(root, 'id_rsa'), 'whatever it holds');
    const error = await readBuildContext(root, { label: 'services.web.build.context', project: project(root) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    const refusal = error as UserError;
    expect(refusal.exitCode).toBe(2);
    expect(refusal.code).toBe('BUILD_CONTEXT_SECRET');
    expect(refusal.message).toContain(`services.web.build.context (${root}) holds 3 files that must not be sent to the image builder`);
    expect(refusal.message).toContain('config/tls.pem: a private key (BEGIN PRIVATE KEY)');
    expect(refusal.message).toContain("config/secrets.bak: a copy of depl's secrets file");
    expect(refusal.message).toContain('id_rsa: an SSH private key (named id_rsa)');
    expect(refusal.hint).toContain(`Nothing was built. Add each to ${path.join(root, '.dockerignore')}`);
    // printed as it is: nothing in it looks like a secret to the redaction every error passes through
    expect(redact(refusal.message)).toBe(refusal.message);
    // the fix the hint gives works
    await appendFile(path.join(root, '.dockerignore'), 'config/tls.pem\nconfig/secrets.bak\nid_rsa\n');
    expect((await readBuildContext(root, { label: 'services.web.build.context', project: project(root) })).files).not.toContain('config/tls.pem');
  });

  it('refuses a context inside .depl/', async () => {
    const error = await readBuildContext(path.join(root, '.depl'), { label: 'services.web.build.context', project: project(root) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).code).toBe('BUILD_CONTEXT_OPERATOR_FILES');
  });

  it('buildinst refuses it before it reaches the cluster or builds anything', async () => {
    await writeFile(path.join(root, 'deploy.key'), generateParseableKeyPair().private);
    const config = parseConfig('app: shop\ndomain: shop.test\nservices: { web: { build: { context: ., dockerfile: Dockerfile }, port: 80, http: true } }\n');
    // no .depl/inventory.json: had the refusal not come first, this would fail with NO_CLUSTER
    await rm(path.join(root, '.depl', 'inventory.json'));
    const error = await buildinst(buildinstInputsFor({ config, file: path.join(root, 'depl.yaml'), root }), { version: 'v1' }, silentLogger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).code).toBe('BUILD_CONTEXT_SECRET');
    expect((error as UserError).message).toContain('deploy.key: a private key (BEGIN OPENSSH PRIVATE KEY)');
    // --dry-run too: the refusal comes before the cluster is read for the plan
    const dry = await buildinst(buildinstInputsFor({ config, file: path.join(root, 'depl.yaml'), root }), { version: 'v1', dryRun: true }, silentLogger).catch((e: unknown) => e);
    expect(dry).toBeInstanceOf(UserError);
    expect((dry as UserError).exitCode).toBe(2);
    expect((dry as UserError).code).toBe('BUILD_CONTEXT_SECRET');
  });
});

async function tarNames(gzipped: NodeJS.ReadableStream): Promise<string[]> {
  const names: string[] = [];
  const extract = tarStream.extract();
  extract.on('entry', (header, stream, next) => {
    names.push(header.name);
    stream.on('end', () => next());
    stream.resume();
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
    gzipped.pipe(createGunzip()).pipe(extract);
  });
  return names.sort();
}

describe('docker log framing', () => {
  it('joins stdout and stderr frames, and passes unframed text through', () => {
    const frame = (stream: number, text: string) => {
      const body = Buffer.from(text);
      const header = Buffer.alloc(8);
      header[0] = stream;
      header.writeUInt32BE(body.length, 4);
      return Buffer.concat([header, body]);
    };
    expect(demux(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n')]))).toBe('out\nerr\n');
    expect(demux(Buffer.from('plain text'))).toBe('plain text');
  });
});
