import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { parse } from 'yaml';
import { renderInitConfig } from '../src/plan/init-config.js';

/** The crawl benchmark's processes (bench/crawl.ts, bench/crawl-images.ts) and what /proc and Redis say they used. */
const here = path.dirname(fileURLToPath(import.meta.url));
const viteNode = path.join(here, '..', 'node_modules', '.bin', 'vite-node');

export interface ServiceChild {
  child: ChildProcess;
  /** Its stderr: the first and the last 4,000 characters (a start line stays however much it logs after). */
  output: () => string;
  exited: Promise<unknown>;
}

/**
 * The node flags a crawler service is deployed with: those of its command in the example depl.yaml that `depl init`
 * writes (templates/depl.example.yaml, `[node, <flags>..., dist/crawler/<service>/...]`).
 */
export function deployedNodeFlags(service: 'api' | 'worker'): string[] {
  const template = readFileSync(path.join(here, '..', 'templates', 'depl.example.yaml'), 'utf8');
  const example = parse(renderInitConfig(template, { app: 'crawler', domain: 'crawler.localhost', provider: 'local' })) as { services: Record<string, { command: string[] }> };
  const command = example.services[service]!.command;
  return command.slice(1, command.findIndex((arg) => arg.startsWith('dist/')));
}

/** A crawler service as deployed (node <its flags> <entry> --config URL), with extra node flags (--cpu-prof). */
export function spawnService(entry: string, configUrl: string, nodeArgs: string[] = []): ServiceChild {
  const service = entry.includes(`${path.sep}api${path.sep}`) ? 'api' : 'worker';
  const child = spawn(process.execPath, [...deployedNodeFlags(service), ...nodeArgs, entry, '--config', configUrl], { stdio: ['ignore', 'ignore', 'pipe'] });
  let head = '';
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (head.length < 4000) head += d.toString();
    else tail = (tail + d.toString()).slice(-4000);
  });
  return { child, output: () => head + tail, exited: new Promise((resolve) => child.once('exit', resolve)) };
}

/** A peer in its own process (bare-loop-run.ts, crawlee-run.ts): it prints one JSON line with its result. */
export async function childRun<T>(script: string, args: string[]): Promise<T> {
  const child = spawn(viteNode, [path.join(here, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await new Promise((resolve) => child.once('exit', resolve));
  const line = out.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (line === undefined) throw new Error(`${script} printed no result: ${out.slice(-500)}`);
  return JSON.parse(line) as T;
}

export interface SiteInfo {
  origin: string;
  seed: string;
  pages: number;
  /** With images: the image URLs the pages name, the distinct contents among them and their digest (image-contents.ts). */
  images: number;
  contents: number;
  contentsDigest: string;
}

/** The benchmark's site in its own process (site-process.ts); stop() closes it. */
export async function startSiteProcess(args: string[]): Promise<SiteInfo & { stop(): void }> {
  const child: ChildProcess = spawn(viteNode, [path.join(here, 'site-process.ts'), ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      const nl = buffer.indexOf('\n');
      if (nl >= 0) resolve(buffer.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`site process exited with ${code}`)));
  });
  const info = JSON.parse(line) as SiteInfo;
  return { ...info, stop: () => child.stdin!.end() };
}

/** CPU Redis has used so far (INFO cpu), in ms. */
export async function redisCpuMs(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const read = (key: string) => Number(new RegExp(`${key}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (read('used_cpu_user') + read('used_cpu_sys')) * 1000;
}

/** utime + stime of a process from /proc (Linux), in ms. */
export function cpuMsOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/** A process's peak resident set so far (VmHWM), in MB. */
export function peakRssMbOf(pid: number | undefined): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round(Number(match[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}
