import type { CommandContext } from '../context.js';
import { requireConfig } from '../require-config.js';
import { renewEdgeCertificates } from '../../workflows/tls/certificates.js';

export default async function command(ctx: CommandContext, opts: { force?: boolean }): Promise<void> {
  const loaded = await requireConfig(ctx);
  const result = await renewEdgeCertificates(loaded, ctx.log, { force: opts.force === true });
  ctx.result(
    { issued: result.issued, renewed: result.renewed, removed: result.removed, certificates: result.certificates },
    result.lines.join('\n'),
  );
}
