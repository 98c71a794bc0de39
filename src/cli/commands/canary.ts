import type { CommandContext } from '../context.js';
import { lockWaitMs } from '../lock-wait.js';
import { requireConfig } from '../require-config.js';
import { OperationError, UserError } from '../../errors.js';
import { parseSteps } from '../../plan/canary-analysis.js';
import { parseDuration, parsePercent } from '../../plan/duration.js';
import { formatStats } from '../../plan/stats.js';
import { abortCanary, promoteCanary, runCanary, setCanary } from '../../workflows/canary.js';
import { assertVersionLabel, withClusterPort } from '../../workflows/cluster-port.js';
import { dryRunResult, formatDryRun } from '../../workflows/release.js';

interface CanaryOptions {
  weight?: number;
  steps?: string;
  interval: string;
  maxErrorRate: string;
  maxP95: string;
  promote?: boolean;
  abort?: boolean;
  lockWait?: string;
  dryRun?: boolean;
}

/** Requests a canary must get in a step before its figures count. */
const MIN_REQUESTS_PER_STEP = 10;

export default async function command(ctx: CommandContext, version: string | undefined, opts: CanaryOptions): Promise<void> {
  const modes = [opts.weight !== undefined && '--weight', opts.steps !== undefined && '--steps', opts.promote && '--promote', opts.abort && '--abort'].filter(Boolean);
  if (modes.length !== 1) {
    throw new UserError(
      modes.length === 0 ? 'say what to do with the canary' : `${modes.join(' and ')} cannot be combined`,
      'Use one of: depl canary <version> --weight <pct> | depl canary <version> --steps 10,25,50,100 | depl canary --promote | depl canary --abort',
      'BAD_USAGE',
    );
  }
  if ((opts.weight !== undefined || opts.steps !== undefined) && version === undefined) {
    throw new UserError('which version is the canary?', 'depl canary <version> --weight 10', 'BAD_USAGE');
  }
  if (version !== undefined) assertVersionLabel(version);
  const steps = opts.steps !== undefined ? parseSteps(opts.steps) : [];
  const intervalMs = parseDuration(opts.interval, '--interval');
  const thresholds = { maxErrorRate: parsePercent(opts.maxErrorRate, '--max-error-rate'), maxP95Ms: parseDuration(opts.maxP95, '--max-p95'), minRequests: MIN_REQUESTS_PER_STEP };
  const lockWait = lockWaitMs(opts);
  if (opts.dryRun && opts.steps !== undefined) {
    throw new UserError('--dry-run cannot show an automatic canary: its steps depend on live figures', 'Dry-run one step instead: depl canary <version> --weight <pct> --dry-run', 'BAD_USAGE');
  }
  const loaded = await requireConfig(ctx);
  const domain = loaded.config.domain;
  const dryRun = opts.dryRun === true;

  if (dryRun) {
    await withClusterPort(loaded, ctx.log, async (control) => {
      const { change } = opts.promote ? await promoteCanary(control, { dryRun }) : opts.abort ? await abortCanary(control, { dryRun }) : await setCanary(control, version!, opts.weight!, { dryRun });
      ctx.result(dryRunResult(change), formatDryRun(change));
    }, 'dry-run');
    return;
  }

  await withClusterPort(loaded, ctx.log, async (opened) => {
    const control = { ...opened, lockWaitMs: lockWait };
    if (opts.promote) {
      const result = await promoteCanary(control);
      ctx.result({ live: result.live, previous: result.previous, canary: null, ...(result.hookFailures !== undefined ? { hookFailures: result.hookFailures } : {}) }, `Promoted: version ${result.live} is live at http://${domain}/ (previous: ${result.previous ?? 'none'})`);
    } else if (opts.abort) {
      const result = await abortCanary(control);
      ctx.result({ live: result.live, canary: result.canary }, `Canary aborted: all of http://${domain}/ goes to ${result.live}`);
    } else if (opts.weight !== undefined) {
      const result = await setCanary(control, version!, opts.weight);
      ctx.result({ live: result.live, canary: result.canary }, result.canary
        ? `Canary ${result.canary.version} gets ${result.canary.weight}% of http://${domain}/; ${result.live} the rest. Compare them with \`depl stats\`.`
        : `No canary: all of http://${domain}/ goes to ${result.live}`);
    } else {
      const run = await runCanary(control, version!, { steps, intervalMs, thresholds });
      const table = run.steps.map((s) => `${s.weight}%: ${s.decision.action === 'continue' ? 'ok' : 'ABORT'}  ${s.decision.reason}`).join('\n');
      const last = run.steps.at(-1)?.decision;
      const figures = last?.canary ? `\n\n${formatStats({ sinceMs: 0, untilMs: 0, versions: [last.canary, ...(last.live ? [last.live] : [])], unrouted: 0, unparsed: 0 }, { [run.version]: 'canary' })}` : '';
      if (run.outcome === 'promoted') {
        ctx.result(run, `${table}${figures}\n\nCanary ${run.version} promoted: it is live.`);
        return;
      }
      // An aborted canary is a failed deploy (exit 1); the figures are printed first, except in --json mode
      // where stdout holds only the error document.
      if (!ctx.globals.json) ctx.result(run, `${table}${figures}`);
      throw new OperationError(`canary ${run.version} aborted, all traffic is back on ${control.domain}'s live version: ${run.reason}`, 'See the figures with `depl stats`.', 'CANARY_ABORTED');
    }
  });
}
