import { describe, expect, it } from 'vitest';
import { describeScale, parseScalePairs } from '../../../src/plan/scale.js';

describe('depl scale pairs', () => {
  it('are <service>=<n>, several at once', () => {
    expect(parseScalePairs(['worker=5', 'api=0', 'worker=5'])).toEqual({ ok: true, replicas: { worker: 5, api: 0 } });
  });

  it('refuse every bad pair at once, each with what to type instead', () => {
    const result = parseScalePairs(['worker', 'api=-1', 'web=2.5', 'x=1e3', 'y=', 'z=101', 'redis=2', 'worker=1', 'worker=2'], ['redis']);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.message)).toEqual([
      '"worker" is not <service>=<replicas>',
      'api=-1: replicas must be a whole number from 0 to 100',
      'web=2.5: replicas must be a whole number from 0 to 100',
      'x=1e3: replicas must be a whole number from 0 to 100',
      'y=: replicas must be a whole number from 0 to 100',
      'z=101: replicas must be a whole number from 0 to 100',
      'redis is an accessory: it runs one task pinned to the node that holds its volume, and is not scaled',
      'worker is given twice (1 and 2)',
    ]);
    expect(result.problems[0]!.hint).toBe('For example: depl scale worker=5');
    expect(parseScalePairs(['worker=3', 'api=2'], [], { worker: { min: 1, max: 4 } })).toMatchObject({ ok: false, problems: [{
      message: 'worker is autoscaled: its controller keeps it between 1 and 4 replicas while its version is live',
      hint: expect.stringMatching(/^Change autoscale.worker.min\/max in depl.yaml/),
    }] });
    expect(parseScalePairs([])).toMatchObject({ ok: false, problems: [{ message: 'no <service>=<replicas> pair given' }] });
  });
});

describe('how a scale reads', () => {
  it('in the history and the dry run: service=replicas pairs', () => {
    expect(describeScale({ worker: 5, api: 2 })).toBe('worker=5, api=2');
  });
});
