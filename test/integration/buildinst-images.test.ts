import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureBaseImages, type BaseImages } from '../../src/apply/base-images.js';
import { contextFiles, readBuildContext } from '../../src/apply/build-context.js';
import { engineAtSocket } from '../../src/apply/docker.js';
import { OperationError } from '../../src/errors.js';
import { renderRoutingTable } from '../../src/plan/edge-routing.js';
import { DEBIAN_NGINX_MODULES, renderNginxConfig, type NginxRenderOptions } from '../../src/plan/nginx.js';
import { silentLogger, type Logger } from '../../src/util/log.js';

/**
 * Images against this machine's Docker Engine (standing in for a manager's): the offline base images,
 * a build whose context honours .dockerignore, and a failed build that names its failing step.
 */
describe('buildinst images on a Docker Engine', () => {
  const engine = engineAtSocket(inject('dockerSocket'));
  const run = randomBytes(3).toString('hex');
  const tags: string[] = [];
  let base: BaseImages;
  let dir: string;
  const lines: string[] = [];
  const log: Logger = { ...silentLogger, info: (m) => lines.push(m) };

  beforeAll(async () => {
    base = await ensureBaseImages(engine, silentLogger);
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-build-'));
    await mkdir(path.join(dir, 'secret'), { recursive: true });
    await mkdir(path.join(dir, 'src'), { recursive: true });
    await writeFile(path.join(dir, 'src', 'app.js'), 'console.log("app " + process.argv.slice(2).join(" "))\n');
    await writeFile(path.join(dir, 'src', 'app.test.js'), 'test file\n');
    await writeFile(path.join(dir, 'secret', 'key'), 'do not ship\n');
    await writeFile(path.join(dir, 'notes.log'), 'log\n');
    await writeFile(path.join(dir, '.dockerignore'), 'secret\n*.log\n**/*.test.js\n');
  });

  afterAll(async () => {
    for (const tag of tags) await engine.docker.getImage(tag).remove({ force: true }).catch(() => {});
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('makes node, nginx and redis base images offline, with Node 20 and this machine\'s CAs', async () => {
    for (const ref of Object.values(base)) expect(await engine.imageId(ref)).toMatch(/^sha256:/);
    const output = await runIn(base.node, ['node', '-e', 'console.log(process.version, process.env.NODE_EXTRA_CA_CERTS)']);
    expect(output).toMatch(/^v2\d\.\d+\.\d+ \/etc\/ssl\/certs\/ca-certificates.crt/);
    expect(await runIn(base.nginx, ['nginx', '-v'])).toMatch(/nginx version/);
    expect(await runIn(base.redis, ['redis-server', '--version'])).toMatch(/Redis server v=7/);
  });

  it('makes an nginx that loads the edge configuration with its Lua routing, and reads a routing table', async () => {
    const render: NginxRenderOptions = {
      listen: { port: 80 },
      paths: { pid: '/tmp/nginx.pid', accessLog: '/tmp/access.log', errorLog: '/tmp/error.log', temp: '/tmp', routing: '/tmp/routing', modules: DEBIAN_NGINX_MODULES },
    };
    const routing = renderRoutingTable({ app: 'img', domain: 'img.test', live: 'v1', versions: [{ label: 'v1', upstream: { service: 'img-v1-web', port: 80, address: '127.0.0.1:8080' } }] });
    const script = 'printf "%s" "$1" > /tmp/nginx.conf && printf "%s" "$2" > /tmp/routing && nginx -t -c /tmp/nginx.conf 2>&1; cat /tmp/error.log 2>/dev/null; true';
    const output = await runIn(base.nginx, ['sh', '-c', script, 'sh', renderNginxConfig({ app: 'img' }, render), routing.text]);
    expect(output).toContain('test is successful');
    expect(output).not.toMatch(/\[(error|emerg|alert)\]|depl: ignoring/);
  });

  it('sends only what .dockerignore lets through, and builds from the node base image', async () => {
    expect(await contextFiles(dir)).toEqual(['.dockerignore', 'src/app.js']);
    const dockerfile = path.join(dir, 'Dockerfile');
    await writeFile(dockerfile, 'ARG NODE_IMAGE\nFROM ${NODE_IMAGE}\nCOPY . /app/\nRUN ls -R /app > /listing\nCMD ["node", "/app/src/app.js"]\n');
    const tag = `depl-test-build/app:${run}`;
    tags.push(tag);
    const id = await engine.build({ context: await readBuildContext(dir, { label: 'the test app' }), dockerfile, tag, args: { NODE_IMAGE: base.node }, labels: { 'depl.app': 'test' } }, log);
    expect(id).toBe(await engine.imageId(tag));
    const listing = await runIn(tag, ['cat', '/listing']);
    expect(listing).toContain('app.js');
    expect(listing).not.toMatch(/secret|notes\.log|app\.test\.js/);
    expect(lines.some((l) => /Step \d+\/\d+ : FROM/.test(l))).toBe(true);
  });

  it('ends a failed build with the failing step and its output', async () => {
    const dockerfile = path.join(dir, 'Broken.Dockerfile');
    await writeFile(dockerfile, 'ARG NODE_IMAGE\nFROM ${NODE_IMAGE}\nRUN echo preparing\nRUN echo "compiler says no" >&2 && exit 7\nRUN echo never\n');
    const tag = `depl-test-build/broken:${run}`;
    const error = await engine.build({ context: await readBuildContext(dir, { label: 'the test app' }), dockerfile, tag, args: { NODE_IMAGE: base.node } }, silentLogger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    expect((error as OperationError).message).toMatch(/the build of depl-test-build\/broken:\w+ failed at Step 4\/5 : RUN echo "compiler says no"/);
    expect((error as OperationError).message).toMatch(/returned a non-zero code: 7/);
    expect((error as OperationError).message).toContain('compiler says no');
    expect(await engine.imageId(tag)).toBeNull();
  });

  async function runIn(image: string, cmd: string[]): Promise<string> {
    const container = await engine.docker.createContainer({ Image: image, Entrypoint: [], Cmd: cmd, NetworkDisabled: true });
    try {
      await container.start();
      await container.wait();
      const logs = await container.logs({ stdout: true, stderr: true });
      const { demux } = await import('../../src/apply/swarm.js');
      return demux(logs as unknown as Buffer);
    } finally {
      await container.remove({ force: true });
    }
  }
});
