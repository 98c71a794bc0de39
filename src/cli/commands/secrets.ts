import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { UserError } from '../../errors.js';
import { secretsSource } from '../../workflows/adapter-slices.js';
import { importVaultSecrets, listSecrets, removeSecret, setSecret } from '../../workflows/secrets.js';

interface SecretsOptions { generate?: boolean; vault?: string; vaultPasswordFile?: string; names?: string[] }

export default async function command(ctx: CommandContext, action: 'set' | 'list' | 'rm' | 'import', name: string | undefined, opts: SecretsOptions): Promise<void> {
  const source = secretsSource(await requireConfig(ctx));
  if (action === 'import') {
    const result = await importVaultSecrets(source, {
      vaultFile: opts.vault!, passwordFile: opts.vaultPasswordFile, names: opts.names ?? [], interactive: ctx.interactive, now: new Date(),
    });
    ctx.result(result, `Imported ${result.imported.join(', ')} into ${result.file}. They take effect with the next \`depl buildinst\`.`);
    return;
  }
  if (action === 'list') {
    const rows = await listSecrets(source);
    const lines = rows.map((r) => `${r.name.padEnd(24)} ${r.source.padEnd(8)} ${r.changedAt ?? '-'}${r.declared ? '' : '  (not declared in depl.yaml)'}`);
    ctx.result({ secrets: rows }, rows.length === 0 ? 'No secrets declared or set.' : [`${'NAME'.padEnd(24)} ${'SOURCE'.padEnd(8)} CHANGED`, ...lines].join('\n'));
    return;
  }
  if (action === 'rm') {
    const result = await removeSecret(source, name!);
    if (result.stillDeclared) ctx.log.warn(`${name} is still declared in depl.yaml: the next buildinst needs a value (depl secrets set ${name})`);
    ctx.result(result, `Removed ${name}. Versions already installed keep the swarm secret they started with.`);
    return;
  }
  const result = await setSecret(source, name!, { generate: opts.generate, now: new Date(), readValue: () => readValue(ctx, name!) });
  ctx.result(result, `${result.generated ? 'Generated' : 'Set'} ${name} in ${result.file}. It takes effect with the next \`depl buildinst\` (a new version); running versions keep their value.`);
}

/** Never from the command line (argv shows in `ps`): piped on stdin, or typed at a hidden prompt. */
async function readValue(ctx: CommandContext, name: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  if (!ctx.interactive) throw new UserError(`no value for ${name}: pipe it on stdin, or pass --generate`, 'With --yes depl never prompts.', 'SECRET_VALUE');
  const { password } = await import('@inquirer/prompts');
  return password({ message: `Value for ${name}:`, mask: '*' }, { output: process.stderr });
}
