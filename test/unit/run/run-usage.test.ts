import { describe, expect, it } from 'vitest';
import { isDeplError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/util/log.js';
import { runJob } from '../../../src/workflows/run.js';

/**
 * depl run refuses bad input before it connects anywhere: opening the cluster below fails with another error
 * than these.
 */
const access = { app: 'shop', open: () => Promise.reject(new Error('depl run opened the cluster before checking its input')) };
const io = { stdout: process.stdout, stderr: process.stderr };

async function refusal(options: Parameters<typeof runJob>[1]): Promise<{ exitCode: number | false; message: string }> {
  try {
    await runJob(access, options, silentLogger, io);
  } catch (error) {
    return { exitCode: isDeplError(error) && error.exitCode, message: (error as Error).message };
  }
  throw new Error('runJob did not refuse');
}

describe('depl run: usage refused before any connection (exit 2)', () => {
  it('no command and no --entrypoint', async () => {
    expect(await refusal({ service: 'web', command: [] })).toEqual({ exitCode: 2, message: 'no command to run' });
  });

  it('an empty --entrypoint', async () => {
    expect(await refusal({ service: 'web', command: ['x'], entrypoint: '' })).toEqual({ exitCode: 2, message: '--entrypoint is empty' });
  });

  it('a --timeout that is not a duration', async () => {
    expect(await refusal({ service: 'web', command: ['true'], timeout: '5 minutes' })).toEqual({ exitCode: 2, message: '--timeout "5 minutes" is not a duration' });
  });
});
