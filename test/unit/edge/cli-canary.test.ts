import { describe, expect, it } from 'vitest';
import canary from '../../../src/cli/commands/canary.js';
import switchCommand from '../../../src/cli/commands/switch.js';
import type { CommandContext } from '../../../src/cli/context.js';
import { UserError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/util/log.js';

/** Bad usage is refused before depl.yaml is read or anything is contacted (exit 2). */
const ctx: CommandContext = { globals: { config: '/nonexistent/depl.yaml' }, log: silentLogger, interactive: false, progress: false, result: () => {} };
const defaults = { interval: '1m', maxErrorRate: '1%', maxP95: '500ms' };

describe('depl canary / switch usage', () => {
  it.each([
    [['v2', defaults], /say what to do with the canary/],
    [['v2', { ...defaults, weight: 10, promote: true }], /--weight and --promote cannot be combined/],
    [[undefined, { ...defaults, weight: 10 }], /which version is the canary/],
    [['v2', { ...defaults, steps: '50,10' }], /must rise/],
    [['v2', { ...defaults, steps: '10,50', interval: 'soon' }], /--interval "soon" is not a duration/],
    [['v2', { ...defaults, steps: '10,50', maxErrorRate: '200%' }], /--max-error-rate "200%"/],
    [['V2!', { ...defaults, weight: 5 }], /version "V2!"/],
  ] as const)('refuses %j', async (args, message) => {
    const error = await (canary as (...a: unknown[]) => Promise<void>)(ctx, ...args).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses a version that is not a DNS label before reading depl.yaml', async () => {
    await expect(switchCommand(ctx, 'v1;reboot')).rejects.toThrow(/version "v1;reboot" may contain only/);
  });
});
