import { configPathFrom, loadConfig, type LoadedConfig } from '../config/load.js';
import { isDeplError } from '../errors.js';
import { crawlInputsFor } from '../workflows/adapter-slices.js';
import { crawlerClientFor, type CrawlApiOptions } from '../workflows/crawl.js';

/**
 * The crawl commands' API client: depl.yaml read (from --config, DEPL_CONFIG or the folder) and cut to what the
 * crawl workflow reads. With --api there may be no depl.yaml; without it, one is needed to find the edge.
 */
export async function crawlerClient(options: CrawlApiOptions & { configFile?: string }): ReturnType<typeof crawlerClientFor> {
  const loaded = await loadOptionalConfig(options.configFile, options.env ?? process.env, options.api === undefined);
  return crawlerClientFor(loaded === undefined ? undefined : crawlInputsFor(loaded), options);
}

async function loadOptionalConfig(file: string | undefined, env: NodeJS.ProcessEnv, required: boolean): Promise<LoadedConfig | undefined> {
  try {
    return await loadConfig(configPathFrom(file, env));
  } catch (error) {
    if (!required && isDeplError(error) && error.code === 'CONFIG_MISSING') return undefined;
    throw error;
  }
}
