import type { CommandContext } from '../context.js';
import { NotImplementedError } from '../../errors.js';
import { requireConfig } from '../require-config.js';

export default async function command(ctx: CommandContext): Promise<void> {
  await requireConfig(ctx);
  throw new NotImplementedError('crawl-status');
}
