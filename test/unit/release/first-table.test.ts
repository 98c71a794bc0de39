import { rm } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readReleaseDocument } from '../../../src/apply/release-store.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

let fake: FakeCluster;
beforeEach(async () => {
  fake = await startFakeCluster({ versions: ['v1'] });
});
afterEach(async () => {
  await fake.close();
});

describe('a cluster\'s first change', () => {
  it('gives a new edge that answers nothing yet its first routing table, and calls it no repair', async () => {
    // a freshly created edge: no routing table loaded, so its probe has no answer
    await rm(`${fake.dir}/edge/routing`);
    const warnings: string[] = [];
    const steps: string[] = [];
    const control = { ...fake.control, log: { ...fake.control.log, warn: (m: string) => warnings.push(m), step: (m: string) => steps.push(m) } };
    await switchVersion(control, 'v1');
    expect(warnings).toEqual([]);
    expect(steps.some((s) => s.startsWith('the edge gets its first routing table'))).toBe(true);
    expect((await fake.get(fake.domain)).version).toBe('v1');
    const doc = await readReleaseDocument(fake.control.stateRemote, fake.app, fake.control.stateRoot);
    expect(doc.history.map((h) => h.action)).toEqual(['switch']);
  });
});
