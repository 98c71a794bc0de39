import path from 'node:path';
import { UserError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { configPathFrom } from '../../config/load.js';
import { checkAppName, checkDomainName } from '../../names.js';
import { visible } from '../../util/terminal-text.js';
import { initConfig } from '../../workflows/init.js';

interface InitOptions {
  provider: 'local' | 'openstack';
  app?: string;
  domain?: string;
  force?: boolean;
  from?: string;
  example?: 'crawler';
  port?: number;
  health?: string;
  /** false with --no-tls (commander's negated option). */
  tls: boolean;
  tlsEmail?: string;
}

export default async function init(ctx: CommandContext, opts: InitOptions): Promise<void> {
  if (opts.app !== undefined) {
    const app = checkAppName(opts.app);
    if (!app.ok) throw new UserError(`--app "${opts.app}" ${app.reason}`, 'Choose a short lower-case name like "crawler".', 'BAD_APP_NAME');
  }
  if (opts.domain !== undefined) {
    const domain = checkDomainName(opts.domain);
    if (!domain.ok) throw new UserError(`--domain "${opts.domain}" ${domain.reason}`, 'Use a domain like crawler.example.org.', 'BAD_DOMAIN');
  }

  const ask = ctx.interactive
    ? async (q: { message: string; default: string; validate: (v: string) => true | string }) => (await import('@inquirer/prompts')).input(q)
    : undefined;
  const { tls, ...rest } = opts;
  const result = await initConfig({ ...rest, noTls: !tls, force: opts.force ?? false, file: configPathFrom(ctx.globals.config), ask });

  // the notes quote the Compose file's keys and values: each is shown as one line, control characters escaped
  const lines = [`Wrote ${visible(result.file)} for app ${result.app} at ${result.domain} from ${visible(result.source)} (provider: ${opts.provider}).`];
  if (result.dns !== undefined) lines.push(`  note: ${result.dns.note}`);
  if (result.tls !== undefined) lines.push(`  ${visible(result.tls.note)}`);
  lines.push(`  services: ${result.services.join(', ')}`);
  if (result.accessories.length > 0) lines.push(`  accessories: ${result.accessories.join(', ')}`);
  if (result.notTranslated.length > 0) lines.push('  not translated (also listed in the file):', ...result.notTranslated.map((l) => `    - ${visible(l)}`));
  if (result.importedSecrets.length > 0) lines.push(`Imported the compose values of ${result.importedSecrets.join(', ')} into ${result.secretsFile} (0600; not shown).`);
  if (result.generatedSecrets.length > 0) {
    lines.push(`Generated ${result.generatedSecrets.join(', ')} into ${result.secretsFile} (0600). To use your own value: depl secrets set NAME`);
  }
  for (const file of result.dockerignores) lines.push(`Listed depl's own files (.depl/, ${path.basename(result.file)}) in ${file}: they never go into an image.`);
  if (result.verdicts.length > 0) lines.push('Per compose service:', ...result.verdicts.map((v) => `  - ${visible(v)}`));
  lines.push('Next: depl node-up, then depl buildinst');
  ctx.result({ ...result, provider: opts.provider }, lines.join('\n'));
}
