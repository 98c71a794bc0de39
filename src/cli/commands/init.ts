import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { configPathFrom, parseConfig } from '../../config/load.js';
import { renderInitConfig } from '../../plan/init-config.js';
import { checkAppName, checkDomainName } from '../../names.js';
import { generateMissingSecrets, secretsFilePath } from '../../apply/secrets-store.js';
import { packagePath } from '../../util/paths.js';

interface InitOptions { provider: 'local' | 'openstack'; app: string; domain: string; force?: boolean }

export default async function init(ctx: CommandContext, opts: InitOptions): Promise<void> {
  const app = checkAppName(opts.app);
  if (!app.ok) throw new UserError(`--app "${opts.app}" ${app.reason}`, 'Choose a short lower-case name like "crawler".');
  const domain = checkDomainName(opts.domain);
  if (!domain.ok) throw new UserError(`--domain "${opts.domain}" ${domain.reason}`, 'Use a domain like crawler.example.org.');

  const file = configPathFrom(ctx.globals.config);
  const text = renderInitConfig(await readFile(packagePath('templates', 'depl.example.yaml'), 'utf8'), opts);
  const config = parseConfig(text, file); // the example must itself be valid; a failure here is caught by the unit tests
  try {
    await writeFile(file, text, { flag: opts.force ? 'w' : 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UserError(`${file} already exists`, 'Pass --force to overwrite it, or --config to write elsewhere.');
    }
    throw error;
  }
  await chmod(file, 0o600); // --force over an older, wider file
  // strong random values for the secrets the example declares; values already there are kept
  const generated = await generateMissingSecrets(path.dirname(file), config.secrets, new Date());
  const secrets = secretsFilePath(path.dirname(file));
  ctx.result(
    { file, app: opts.app, domain: opts.domain, provider: opts.provider, secretsFile: secrets, generatedSecrets: generated },
    `Wrote ${file} (provider: ${opts.provider}).` +
      (generated.length > 0 ? ` Generated ${generated.join(', ')} into ${secrets} (0600; \`depl secrets list\`).` : '') +
      ' Next: depl node-up',
  );
}
