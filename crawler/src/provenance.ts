import type { JobProvenance } from './jobs.js';

/**
 * Which crawler made a job's data, from what the deployment tells its services: depl sets DEPL_VERSION (the
 * release the service belongs to) and DEPL_IMAGE_ID (the id of the image it runs) on every service it
 * installs. Run any other way, a value it was not given is "unknown", never a guess.
 */
export function deploymentProvenance(env: NodeJS.ProcessEnv, userAgent: string): JobProvenance {
  const known = (value: string | undefined) => (value === undefined || value.trim() === '' ? 'unknown' : value.trim());
  return { crawlerVersion: known(env.DEPL_VERSION), imageDigest: known(env.DEPL_IMAGE_ID), userAgent };
}

/** The software a WACZ names: the crawler and its release. */
export function softwareName(provenance: JobProvenance | undefined): string {
  return `depl-crawler (release ${provenance?.crawlerVersion ?? 'unknown'}, image ${provenance?.imageDigest ?? 'unknown'})`;
}
