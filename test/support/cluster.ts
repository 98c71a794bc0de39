import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { execa } from 'execa';
import { stringify } from 'yaml';
import type { Cluster } from '../../src/apply/cluster.js';
import { LOCAL_LABEL_PREFIX } from '../../src/plan/local-nodes.js';
import { loadConfig, type LoadedConfig } from '../../src/config/load.js';
import { isDeplError } from '../../src/errors.js';
import { createLogger, silentLogger, type Logger } from '../../src/util/log.js';
import { openCluster } from '../../src/workflows/cluster.js';
import { nodeUp, type NodeUpResult } from '../../src/workflows/node-up.js';
import { nodeInputsFor } from '../../src/workflows/command-inputs.js';
import { removeDockerObjects } from './background-removal.js';

export interface TestClusterOptions {
  nodes?: number;
  app?: string;
  /** Extra top-level depl.yaml keys (services, accessories, config, images...), merged over the defaults. */
  config?: Record<string, unknown>;
  /** Extra provider keys (image: cloud...), merged over the test's type, nodes, subnet and prefix. */
  provider?: Record<string, unknown>;
  /** Default: progress lines on stderr when DEPL_TEST_VERBOSE is set, else silent. */
  log?: Logger;
}

export interface TestCluster {
  /** Temporary folder holding depl.yaml, .depl/ (key, known_hosts, inventory) and ansible/. */
  dir: string;
  configFile: string;
  loaded: LoadedConfig;
  /** Open on the swarm; closed by stop(). */
  cluster: Cluster;
  /** Names every container (`<prefix>-node-<n>`), volume and the bridge (`<prefix>-net`). */
  prefix: string;
  subnet: string;
  nodeUp: NodeUpResult;
  /** Removes the node containers, their volumes and the bridge this cluster made (by id, in the background in a vitest run), and the folder. */
  stop(): Promise<void>;
}

const docker = new Docker({ socketPath: process.env.DOCKER_HOST?.replace(/^unix:\/\//, '') || '/var/run/docker.sock' });

async function subnetsInUse(): Promise<Set<string>> {
  const networks = await docker.listNetworks();
  const used = new Set<string>();
  for (const network of networks) {
    for (const config of network.IPAM?.Config ?? []) if (config.Subnet) used.add(config.Subnet);
  }
  return used;
}

/** Subnets this test process gave out: two clusters a file brings up at once do not draw the same one. */
const handedOut = new Set<string>();

export async function freeSubnet(): Promise<string> {
  const used = await subnetsInUse();
  for (let tries = 0; tries < 200; tries += 1) {
    const subnet = `10.213.${Math.floor(Math.random() * 250) + 1}.0/24`;
    if (!used.has(subnet) && !handedOut.has(subnet)) {
      handedOut.add(subnet);
      return subnet;
    }
  }
  throw new Error('no free 10.213.X.0/24 subnet on this machine: remove old test networks (docker network ls)');
}

/**
 * A real local swarm for an integration test: a temporary depl.yaml with its own subnet and container
 * prefix (so several test files and engineers' runs coexist), `node-up` run on it, and a Cluster opened.
 * Call stop() in afterAll. The node image is built once per machine (about a minute) and cached.
 */
export async function startTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  const log = options.log ?? (process.env.DEPL_TEST_VERBOSE ? createLogger({ verbose: true }) : silentLogger);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-cluster-'));
  const prefix = `dt-${randomBytes(3).toString('hex')}`;
  const configFile = path.join(dir, 'depl.yaml');
  for (let attempt = 1; ; attempt += 1) {
    const subnet = await freeSubnet();
    const app = options.app ?? 'testapp';
    const document = {
      app,
      domain: `${app}.localhost`,
      provider: { type: 'local', nodes: options.nodes ?? 3, subnet, prefix, ...options.provider },
      services: { web: { image: 'depl-test-web:1', port: 8080, http: true } },
      ...options.config,
    };
    await writeFile(configFile, stringify(document));
    const loaded = await loadConfig(configFile);
    try {
      const result = await nodeUp(nodeInputsFor(loaded), log);
      const cluster = await openCluster(loaded, log);
      return {
        dir, configFile, loaded, cluster, prefix, subnet, nodeUp: result,
        async stop() {
          await cluster.close().catch(() => {});
          await removeByPrefix(prefix);
          await rm(dir, { recursive: true, force: true });
        },
      };
    } catch (error) {
      // gone before the next attempt, which makes the same names
      await removeByPrefix(prefix, { wait: true }).catch((leftover: unknown) => {
        throw new AggregateError([error, leftover], `node-up of test cluster ${prefix} failed, and removing what it made failed too`);
      });
      // another run took the same subnet between our look and our create: pick another
      if (isDeplError(error) && error.code === 'LOCAL_SUBNET_TAKEN' && attempt < 5) continue;
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }
}

/**
 * Every container, volume and network labelled with this cluster's unique prefix, removed by id: listed now,
 * removed in the background in a vitest run (see background-removal.ts; the run's end waits for it and fails on
 * what is left). `wait: true` returns once they are gone, for a caller that makes the same names again.
 */
export async function removeByPrefix(prefix: string, options: { wait?: boolean } = {}): Promise<void> {
  const label = { label: [`${LOCAL_LABEL_PREFIX}=${prefix}`] };
  const [containers, volumes, networks] = await Promise.all([
    docker.listContainers({ all: true, filters: label }),
    docker.listVolumes({ filters: label }),
    docker.listNetworks({ filters: label }),
  ]);
  await removeDockerObjects(prefix, {
    containers: containers.map((c) => c.Id),
    volumes: (volumes.Volumes ?? []).map((v) => v.Name),
    networks: networks.map((n) => n.Id),
  }, options);
}

/**
 * Puts images of this machine's engine on every node (no registry here): `docker save` once (several tags go
 * in one archive, one load per node), then `docker load` over SSH on all nodes in parallel. Services made from
 * them need --no-resolve-image.
 */
export function loadImageOnNodes(cluster: Cluster, ...tags: [string, ...string[]]): Promise<void> {
  return loadImageOn(cluster, cluster.nodes.map((n) => n.name), tags);
}

/**
 * The same on the manager alone, for images only its services run (the TLS renewal task and its engine gate run
 * beside the edge): a node image is large, and copying it over SSH to every node costs a test tens of seconds.
 */
export function loadImageOnManager(cluster: Cluster, ...tags: [string, ...string[]]): Promise<void> {
  return loadImageOn(cluster, [cluster.managerNode.name], tags);
}

async function loadImageOn(cluster: Cluster, nodes: string[], tags: string[]): Promise<void> {
  const saved = await execa('docker', ['save', ...tags], { encoding: 'buffer', maxBuffer: 2 * 1024 ** 3 });
  const archive = Buffer.from(saved.stdout);
  await Promise.all(nodes.map(async (name) => {
    const remote = await cluster.remote(name);
    await remote.exec(['docker', 'load', '-q'], { stdin: archive, timeoutMs: 300_000 });
  }));
}
