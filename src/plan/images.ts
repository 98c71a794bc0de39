import type { DeplConfig } from '../config/schema.js';
import type { Argv } from './shell.js';

/**
 * Which images one version needs: one build per service with `build:`, shared by the services that name it
 * with `from:`; services and accessories with `image:` use that image, looked up in depl.yaml's `images:` map
 * first so an offline cluster can point `redis` at a locally made image.
 */
export interface ImageBuild {
  /** `<app>/<service>:<version>`, named after the service that builds it. */
  tag: string;
  service: string;
  /** As written in depl.yaml, relative to its folder. */
  context: string;
  dockerfile: string;
  /** Base images first (`NODE_IMAGE`, ...), then the service's own `build.args`, which win. */
  args: Record<string, string>;
  /** The Dockerfile stage to build; absent: its last. */
  target?: string;
  /** Every service that runs this image: the builder and those with `from: <builder>`. */
  usedBy: string[];
}

export interface ImagePlan {
  builds: ImageBuild[];
  /** Service name -> image reference it runs. */
  services: Record<string, string>;
  /** Accessory name -> image reference it runs. */
  accessories: Record<string, string>;
}

/** `<app>/<service>:<version>`, under the registry's host when one is configured (nodes pull from it). */
export function imageTag(app: string, service: string, version: string, registry?: string): string {
  const name = `${app}/${service}:${version}`;
  return registry !== undefined ? `${registry.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '')}/${name}` : name;
}

/** `images:` key -> build argument: `node` -> `NODE_IMAGE`, `node-build` -> `NODE_BUILD_IMAGE`. */
export function baseImageArg(key: string): string {
  return `${key.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_IMAGE`;
}

/**
 * Base images handed to every build. The build stage of a Node Dockerfile needs npm; unless `node-build`
 * is set, it uses the same image as the runtime (`node`), as the official slim images carry npm.
 */
export function baseImageArgs(images: Record<string, string>): Record<string, string> {
  const args: Record<string, string> = {};
  for (const [key, ref] of Object.entries(images)) args[baseImageArg(key)] = ref;
  if (images.node !== undefined && images['node-build'] === undefined) args[baseImageArg('node-build')] = images.node;
  return args;
}

/** `redis` -> `images.redis` when depl.yaml maps it, else the reference as written. */
export function resolveImage(ref: string, images: Record<string, string>): string {
  return images[ref] ?? ref;
}

export function planImages(config: DeplConfig, version: string): ImagePlan {
  const registry = config.registry?.url;
  const builds: ImageBuild[] = [];
  const services: Record<string, string> = {};
  const base = baseImageArgs(config.images);
  for (const [name, svc] of Object.entries(config.services)) {
    if (!svc.build) continue;
    const tag = imageTag(config.app, name, version, registry);
    const usedBy = [name, ...Object.entries(config.services).filter(([, other]) => other.from === name).map(([n]) => n)];
    builds.push({ tag, service: name, context: svc.build.context, dockerfile: svc.build.dockerfile, args: { ...base, ...svc.build.args }, ...(svc.build.target !== undefined ? { target: svc.build.target } : {}), usedBy });
    for (const user of usedBy) services[user] = tag;
  }
  for (const [name, svc] of Object.entries(config.services)) {
    if (svc.image !== undefined) services[name] = resolveImage(svc.image, config.images);
  }
  const accessories: Record<string, string> = {};
  for (const [name, acc] of Object.entries(config.accessories)) accessories[name] = resolveImage(acc.image, config.images);
  return { builds, services, accessories };
}

/** The image tags one version of the app was built under (what prune untags), registry prefix included. */
export function versionImageTags(config: DeplConfig, version: string): string[] {
  return planImages(config, version).builds.map((b) => b.tag);
}

/** Untags images on a node; layers still used by other tags stay. */
export function removeImagesCommand(tags: string[]): Argv {
  return ['docker', 'image', 'rm', ...tags];
}

/** The node base image: the renewal task, the autoscale controller and its gate run on it (depl.yaml's images.node). */
export function nodeImageOf(config: Pick<DeplConfig, 'images'>): string {
  return config.images.node ?? 'node:20-bookworm-slim';
}
