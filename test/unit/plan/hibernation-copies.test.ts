import { describe, expect, it } from 'vitest';
import { chooseRecord, type RecordCopies } from '../../../src/plan/hibernation-copies.js';
import type { HibernationRecord } from '../../../src/plan/hibernation.js';

/** Which copy of the hibernation record a command goes on from: this machine's, or Swift's (another machine's). */

const swift = { container: 'shop-depl-backups', endpoint: 'https://swift.test/v1/AUTH_p', objects: {} };
const record = (extra: Partial<HibernationRecord> = {}): HibernationRecord => ({
  app: 'shop', phase: 'hibernating', since: '2026-12-01T08:00:00.000Z', by: 'ops@test', complete: true, live: 'v2',
  releaseCopy: '/p/.depl/backups/shop-release-h.json', backups: {}, swift: { ...swift, recordShared: true }, ...extra,
});
const copies = (local: RecordCopies['local'], cloud?: RecordCopies['cloud']): RecordCopies => ({
  local, ...(cloud !== undefined ? { cloud } : {}), localFile: '/p/.depl/hibernation.json', cloudObject: 'shop-depl-backups/hibernation.json',
});

describe('chooseRecord', () => {
  it('no object store: this machine\'s copy, whatever it is', () => {
    expect(chooseRecord(copies(null))).toMatchObject({ ok: true, record: null, from: 'none', notes: [] });
    expect(chooseRecord(copies(record()))).toMatchObject({ ok: true, record: record(), from: 'local', localCurrent: true, cloudCurrent: false });
    expect(chooseRecord(copies('unreadable'))).toMatchObject({ ok: true, record: 'unreadable' });
  });

  it('a machine without a record goes on from Swift\'s, saying so; the same copy on both is current on both', () => {
    expect(chooseRecord(copies(null, record()))).toMatchObject({ ok: true, record: record(), from: 'swift', localCurrent: false, cloudCurrent: true, notes: [expect.stringContaining('comes from Swift (shop-depl-backups/hibernation.json, MD5 checked)')] });
    expect(chooseRecord(copies(record(), record()))).toMatchObject({ ok: true, from: 'local', localCurrent: true, cloudCurrent: true, cloudGone: false, notes: [] });
    expect(chooseRecord(copies(null, null))).toMatchObject({ ok: true, record: null, from: 'none' });
  });

  it('a local record not yet shared is this run\'s own, Swift having none; one that was shared is a wake\'s leftover', () => {
    const unshared = record({ complete: false, swift });
    expect(chooseRecord(copies(unshared, null))).toMatchObject({ ok: true, record: unshared, cloudGone: false, notes: [] });
    expect(chooseRecord(copies(record(), null))).toMatchObject({ ok: true, record: record(), cloudGone: true, notes: [expect.stringContaining('Swift has no copy of the record any more: a depl wake removed it')] });
  });

  it('within one hibernation the copy further along wins and the disagreement is reported; on a tie, this machine\'s', () => {
    const waking = record({ phase: 'waking', wakeStartedAt: '2026-12-02T09:00:00.000Z' });
    // another machine's wake began: this machine's hibernate must see it (and refuse), not reuse its old view
    expect(chooseRecord(copies(record(), waking))).toMatchObject({ ok: true, record: waking, from: 'swift', localCurrent: false, cloudCurrent: true, notes: [expect.stringMatching(/hibernated \(complete\)\) and Swift's \(waking since 2026-12-02T09:00:00.000Z\) disagree: going on from Swift's/)] });
    // this machine wrote "complete" and was stopped before Swift's copy: its own is further
    const begun = record({ complete: false });
    expect(chooseRecord(copies(record(), begun))).toMatchObject({ ok: true, record: record(), from: 'local', cloudCurrent: false, notes: [expect.stringContaining('going on from this machine\'s')] });
    // shared first in Swift, stopped before this machine's copy said so
    const notShared = record({ complete: false, swift });
    expect(chooseRecord(copies(notShared, begun))).toMatchObject({ ok: true, record: begun, from: 'swift' });
    const tie = record({ live: 'v3' });
    expect(chooseRecord(copies(tie, record()))).toMatchObject({ ok: true, record: tie, from: 'local' });
  });

  it('two different hibernations are refused, naming both (but for a leftover of a finished one); an unreadable Swift copy too', () => {
    expect(chooseRecord(copies(record({ swift }), record({ since: '2026-12-05T10:00:00.000Z', by: 'other@test' })))).toMatchObject({
      ok: false, code: 'HIBERNATION_RECORD_CONFLICT',
      message: expect.stringMatching(/hibernating since 2026-12-01T08:00:00.000Z, by ops@test\) and Swift's \(shop-depl-backups\/hibernation.json: since 2026-12-05T10:00:00.000Z, by other@test\) are of two different hibernations/),
      hint: expect.stringContaining('Nothing was changed'),
    });
    expect(chooseRecord(copies(record(), 'unreadable'))).toMatchObject({ ok: false, code: 'HIBERNATION_RECORD_UNREADABLE' });
    // a record of this machine's that reached Swift, older than Swift's: a wake finished it (Swift's copy was removed first)
    const later = record({ since: '2026-12-05T10:00:00.000Z', by: 'other@test' });
    expect(chooseRecord(copies(record({ phase: 'waking' }), later))).toMatchObject({ ok: true, record: later, from: 'swift', notes: [expect.stringContaining('is of an earlier hibernation (since 2026-12-01T08:00:00.000Z, waking since ?), which a depl wake finished')] });
    // one that never reached Swift, or a newer one here: refused
    expect(chooseRecord(copies(record({ swift }), later))).toMatchObject({ ok: false, code: 'HIBERNATION_RECORD_CONFLICT' });
    expect(chooseRecord(copies(later, record()))).toMatchObject({ ok: false, code: 'HIBERNATION_RECORD_CONFLICT' });
  });
});
