import { readFile, writeFile } from 'node:fs/promises';
import { UserError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { configPathFrom, parseConfig } from '../../config/load.js';
import { renderInitConfig } from '../../plan/init-config.js';
import { checkAppName, checkDomainName } from '../../names.js';
import { packagePath } from '../../util/paths.js';

interface InitOptions { provider: 'local' | 'openstack'; app: string; domain: string; force?: boolean }

export default async function init(ctx: CommandContext, opts: InitOptions): Promise<void> {
  const app = checkAppName(opts.app);
  if (!app.ok) throw new UserError(`--app "${opts.app}" ${app.reason}`, 'Choose a short lower-case name like "crawler".');
  const domain = checkDomainName(opts.domain);
  if (!domain.ok) throw new UserError(`--domain "${opts.domain}" ${domain.reason}`, 'Use a domain like crawler.example.org.');

  const file = configPathFrom(ctx.globals.config);
  const text = renderInitConfig(await readFile(packagePath('templates', 'depl.example.yaml'), 'utf8'), opts);
  parseConfig(text, file); // the example must itself be valid; a failure here is caught by the unit tests
  try {
    await writeFile(file, text, { flag: opts.force ? 'w' : 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UserError(`${file} already exists`, 'Pass --force to overwrite it, or --config to write elsewhere.');
    }
    throw error;
  }
  ctx.result({ file, app: opts.app, domain: opts.domain, provider: opts.provider }, `Wrote ${file} (provider: ${opts.provider}). Next: depl node-up`);
}
