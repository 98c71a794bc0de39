import type { CommandContext } from './context.js';
import { configPathFrom, loadConfig, type LoadedConfig } from '../config/load.js';

export async function requireConfig(ctx: CommandContext): Promise<LoadedConfig> {
  const loaded = await loadConfig(configPathFrom(ctx.globals.config));
  ctx.log.debug(`config: ${loaded.file}`);
  return loaded;
}
