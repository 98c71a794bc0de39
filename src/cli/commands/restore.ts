import { confirm } from '@inquirer/prompts';
import { UserError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { checkBackupFor, restore } from '../../workflows/backup.js';

export default async function command(ctx: CommandContext, accessory: string, file: string, opts: { force?: boolean; lockWait?: string }): Promise<void> {
  const lockWait = lockWaitMs(opts);
  const loaded = await requireConfig(ctx);
  if (!ctx.globals.yes) {
    // the file is checked before anyone is asked anything (restore checks it again once confirmed)
    const { manifest } = await checkBackupFor(loaded, accessory, file, ctx.log);
    const what = `replace the data of accessory ${accessory} with ${file} (${manifest.app}/${manifest.accessory}, made ${manifest.createdAt})`;
    if (!ctx.interactive) throw new UserError(`restore would ${what}`, 'Nothing was changed. Pass --yes to confirm.', 'CONFIRMATION_NEEDED');
    if (!(await confirm({ message: `${what[0]!.toUpperCase()}${what.slice(1)}?`, default: false }, { output: process.stderr }))) {
      ctx.result({ restored: false }, 'Nothing restored.');
      return;
    }
  }
  const result = await restore(loaded, { accessory, file, force: opts.force, lockWaitMs: lockWait }, ctx.log);
  const keys = result.keys !== undefined ? ` (${result.keys} keys)` : '';
  ctx.result({ restored: true, ...result }, `Restored ${accessory} from ${result.file}${keys}. What it held before is in ${result.safetyCopy}.`);
}
