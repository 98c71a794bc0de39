import { ensureDockerEngine } from '../apply/host/docker-engine.js';
import type { ImageRecord, JobDocument } from '@depl/crawler/client';
import { startDemoSite } from '../demo/site-server.js';
import { OperationError } from '../errors.js';
import { localGateway } from '../plan/local-nodes.js';
import { versionHost } from '../plan/names.js';
import type { Logger } from '../util/log.js';
import { buildinst } from './buildinst.js';
import { callApi, crawlerClientFor, waitForCrawl } from './crawl.js';
import { ensureDemoConfig } from './demo-config.js';
import { nodeUp } from './node-up.js';
import { prune } from './prune.js';
import { demoInputsAt } from './command-inputs.js';
import { switchVersion } from './switch.js';

export interface DemoResult {
  version: string;
  previous: string | null;
  edgeAddress: string;
  domain: string;
  siteUrl: string;
  job: JobDocument;
  images: ImageRecord[];
  seconds: number;
}

/**
 * The README's main job on the embedded default: a local 3-node cluster, a version built, installed and
 * switched live, and a crawl of a built-in website run through the live version. Every step is the same
 * workflow the individual commands run; a second run reuses the cluster, images and config it finds.
 */
export async function runDemo(configFile: string, log: Logger, onCrawlProgress: (job: JobDocument) => void): Promise<DemoResult> {
  const started = Date.now();
  log.step('1/6 Docker Engine on this machine (Debian docker.io; installed and started when missing)');
  await ensureDockerEngine(log);

  log.step(`2/6 config: ${configFile}`);
  const demoConfig = await ensureDemoConfig(configFile);
  if (demoConfig.created) log.info(`   wrote ${configFile}: the file \`depl init\` writes`);
  if (demoConfig.allowed) log.info(`   config.allow.networks gains ${demoConfig.allowed}, so the crawler may fetch the demo site on the cluster's bridge`);
  const inputs = await demoInputsAt(configFile);
  const { config } = inputs;
  if (config.provider.type !== 'local') {
    throw new OperationError(`the demo runs on the local provider; ${configFile} says "${config.provider.type}"`, 'Run it in a folder without a depl.yaml, or use the individual commands.', 'DEMO_PROVIDER');
  }
  const subnet = config.provider.subnet;

  log.step(`3/6 depl node-up: ${config.provider.nodes} local nodes (containers running sshd and dockerd), one Docker Swarm, over SSH`);
  const cluster = await nodeUp(inputs.nodes, log);
  log.info(`   ${cluster.nodes.map((n) => `${n.name} ${n.address} ${n.role} ${n.state}`).join('; ')}${cluster.changes.length === 0 ? ' (already up: nothing changed)' : ''}`);
  const edgeAddress = cluster.nodes.find((n) => n.role === 'manager')?.address;
  if (!edgeAddress) throw new OperationError('node-up reported no manager', "Run 'depl status' to see the cluster.", 'NO_MANAGER');

  log.step('4/6 depl buildinst: build the crawler image on the manager, install it as a new version, health-check it through nginx');
  const installed = await buildinst(inputs.buildinst, {}, log);

  log.step(`5/6 depl switch ${installed.version}: make it live on http://${config.domain}/`);
  const switched = await inputs.withPort(log, (control) => switchVersion(control, installed.version));
  // keep the demo cluster small across repeated runs: the live and previous versions stay
  await prune(inputs.prune, { keep: 0 }, log).catch((error: Error) => log.warn(`prune skipped: ${error.message}`));

  const site = await startDemoSite(localGateway(subnet));
  try {
    log.step(`6/6 depl crawl submit ${site.url} --wait: the live version's workers crawl a demo website served from this machine`);
    const { client, where } = await crawlerClientFor(inputs.crawl, {});
    const submitted = await callApi(where, () => client.submit({ urls: [site.url], maxDepth: 3, maxPages: 50 }));
    const job = await waitForCrawl(client, where, submitted.id, onCrawlProgress);
    const images = await callApi(where, () => client.allImages(job.id));
    return {
      version: switched.live,
      previous: switched.previous,
      edgeAddress,
      domain: config.domain,
      siteUrl: site.url,
      job,
      images,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await site.close();
  }
}

/** What a newcomer reads at the end: what was found, and where to look next. */
export function describeDemo(result: DemoResult): string {
  const byPage = new Map<string, ImageRecord[]>();
  for (const image of result.images) byPage.set(image.page, [...(byPage.get(image.page) ?? []), image]);
  const lines = [
    `Crawl ${result.job.id}: ${result.job.status}, ${result.job.counts.fetched} pages fetched, ${result.job.counts.robots} skipped by robots.txt, ${result.images.length} images found:`,
  ];
  for (const [page, images] of [...byPage.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`  ${page}`);
    for (const image of images) lines.push(`    ${image.url}${image.alt ? `  "${image.alt}"` : ''}`);
  }
  const host = (name: string) => `curl -H 'Host: ${name}' http://${result.edgeAddress}`;
  lines.push(
    '',
    `Live version ${result.version}${result.previous ? ` (previous: ${result.previous})` : ''}, done in ${result.seconds.toFixed(0)} s. Look at:`,
    `  ${host(result.domain)}/healthz                          the live version`,
    `  ${host(versionHost(result.version, result.domain))}/openapi.json   this version by its own name`,
    `  ${host(result.domain)}/v1/jobs/${result.job.id}/images   the crawl's images as JSON`,
    '  depl status    depl versions    depl stats    depl crawl results <job> --format csv',
  );
  return lines.join('\n');
}
