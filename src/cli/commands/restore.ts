import { confirm } from '@inquirer/prompts';
import { UserError } from '../../errors.js';
import { renderPlanText } from '../../plan/change-plan.js';
import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { checkBackupFor } from '../../workflows/backup.js';
import { restore } from '../../workflows/restore.js';
import { accessoryInputsFor } from '../../workflows/command-inputs.js';

export default async function command(ctx: CommandContext, accessory: string, file: string, opts: { force?: boolean; lockWait?: string; dryRun?: boolean }): Promise<void> {
  const lockWait = lockWaitMs(opts);
  const inputs = accessoryInputsFor(await requireConfig(ctx));
  if (!ctx.globals.yes && !opts.dryRun) {
    // the file is checked before anyone is asked anything (restore checks it again once confirmed)
    const { manifest, warnings } = await checkBackupFor(inputs, accessory, file);
    for (const warning of warnings) ctx.log.warn(warning);
    const what = `replace the data of accessory ${accessory} with ${file} (${manifest.app}/${manifest.accessory}, made ${manifest.createdAt})`;
    if (!ctx.interactive) throw new UserError(`restore would ${what}`, 'Nothing was changed. Pass --yes to confirm.', 'CONFIRMATION_NEEDED');
    if (!(await confirm({ message: `${what[0]!.toUpperCase()}${what.slice(1)}?`, default: false }, { output: process.stderr }))) {
      ctx.result({ restored: false }, 'Nothing restored.');
      return;
    }
  }
  const { plan, dryRun, ...result } = await restore(inputs, { accessory, file, force: opts.force, lockWaitMs: lockWait, dryRun: opts.dryRun === true }, ctx.log);
  if (dryRun) {
    // the same plan object the applier runs without --dry-run
    ctx.result(plan, renderPlanText(plan).trimEnd());
    return;
  }
  const keys = result.keys !== undefined ? ` (${result.keys} keys)` : '';
  ctx.result({ restored: true, ...result }, `Restored ${accessory} from ${result.file}${keys}. What it held before is in ${result.safetyCopy}.`);
}
