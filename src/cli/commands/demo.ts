import type { CommandContext } from '../context.js';
import { configPathFrom } from '../../config/load.js';
import { progressLine } from '../../workflows/crawl.js';
import { describeDemo, runDemo } from '../../workflows/demo.js';

export default async function command(ctx: CommandContext): Promise<void> {
  const result = await runDemo(configPathFrom(ctx.globals.config), ctx.log, (job) => {
    if (ctx.progress) process.stderr.write(`\r${progressLine(job)}`);
  });
  if (ctx.progress) process.stderr.write('\n');
  ctx.result(result, describeDemo(result));
}
