import { describe, expect, it } from 'vitest';
import { renderPlanText } from '../../../src/plan/change-plan.js';
import {
  describeHibernation, parseHibernationRecord, planHibernate, planWake, renderHibernationRecord,
  type CloudServer, type HibernateRead, type HibernationRecord, type WakeRead,
} from '../../../src/plan/hibernation.js';

/** depl hibernate and wake as data: what each plans from the record and Nova's instances, and what each refuses. */

const server = (name: string, status = 'ACTIVE', taskState: string | null = null): CloudServer => ({ id: `id-${name}`, name, status, taskState });
const nodes = (status = 'ACTIVE') => [server('shop-nodes-0', status), server('shop-nodes-1', status)];

const hibernateRead = (extra: Partial<HibernateRead> = {}): HibernateRead => ({
  app: 'shop', record: null, recordFile: '/p/.depl/hibernation.json', servers: nodes(), accessories: ['redis', 'db'],
  present: { backups: {}, releaseCopy: false },
  files: { backups: { redis: '/p/.depl/backups/shop-redis-h.tar', db: '/p/.depl/backups/shop-db-h.tar' }, releaseCopy: '/p/.depl/backups/shop-release-h.json' },
  now: '2026-12-06T12:00:00.000Z', by: 'ops@test', waitTimeoutMs: 60_000, ...extra,
});

const record = (extra: Partial<HibernationRecord> = {}): HibernationRecord => ({
  app: 'shop', phase: 'hibernating', since: '2026-12-01T08:00:00.000Z', by: 'ops@test', complete: true, live: 'v2',
  releaseCopy: '/p/.depl/backups/shop-release-h.json', backups: { redis: '/p/.depl/backups/shop-redis-h.tar' }, ...extra,
});

const wakeRead = (extra: Partial<WakeRead> = {}): WakeRead => ({
  app: 'shop', domain: 'shop.test', record: record(), recordFile: '/p/.depl/hibernation.json', servers: nodes('SHELVED_OFFLOADED'),
  now: '2026-12-06T12:00:00.000Z', timeouts: { activeMs: 1_000, swarmMs: 2_000, healthyMs: 3_000 }, ...extra,
});

const kinds = (steps: Array<{ kind: string }>) => steps.map((s) => s.kind);

describe('planHibernate', () => {
  it('records first, keeps the release document and backs up every accessory, then shelves each instance and waits', () => {
    const planned = planHibernate(hibernateRead());
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan.command).toBe('depl hibernate');
    expect(planned.plan.steps).toEqual([
      {
        kind: 'record-hibernation', describe: expect.stringContaining('hibernates since 2026-12-06T12:00:00.000Z'),
        record: { app: 'shop', phase: 'hibernating', since: '2026-12-06T12:00:00.000Z', by: 'ops@test', complete: false, live: null, releaseCopy: null, backups: {} },
      },
      { kind: 'keep-release-state', describe: expect.any(String), file: '/p/.depl/backups/shop-release-h.json' },
      { kind: 'backup-accessory', describe: expect.stringContaining('back up redis'), accessory: 'redis', file: '/p/.depl/backups/shop-redis-h.tar' },
      { kind: 'backup-accessory', describe: expect.stringContaining('back up db'), accessory: 'db', file: '/p/.depl/backups/shop-db-h.tar' },
      { kind: 'shelve-server', describe: expect.stringContaining('shelve shop-nodes-0'), server: 'id-shop-nodes-0', name: 'shop-nodes-0' },
      { kind: 'shelve-server', describe: expect.stringContaining('shelve shop-nodes-1'), server: 'id-shop-nodes-1', name: 'shop-nodes-1' },
      { kind: 'wait-shelved', describe: expect.any(String), servers: ['id-shop-nodes-0', 'id-shop-nodes-1'], timeoutMs: 60_000 },
      { kind: 'complete-hibernation', describe: expect.any(String) },
    ]);
    expect(renderPlanText(planned.plan)).toContain('  5. shelve shop-nodes-0');
  });

  it('after an interrupted run plans only what is left: the kept backups and instances already shelving are not asked again', () => {
    const earlier = record({ complete: false, live: 'v2', backups: { redis: '/p/.depl/backups/shop-redis-h.tar', db: '/p/.depl/backups/shop-db-h.tar' } });
    const planned = planHibernate(hibernateRead({
      record: earlier, present: { backups: { redis: true, db: true }, releaseCopy: true },
      servers: [server('shop-nodes-0', 'SHELVED_OFFLOADED'), server('shop-nodes-1', 'ACTIVE', 'shelving')],
    }));
    if (!planned.ok) throw new Error(planned.message);
    expect(kinds(planned.plan.steps)).toEqual(['wait-shelved', 'complete-hibernation']);
    expect(planned.plan.notes.join('\n')).toMatch(/did not finish: this run finishes it[\s\S]*shop-nodes-1 is ACTIVE \(shelving\): waited for/);
  });

  it('backs up again an accessory whose recorded backup is gone, while every instance still runs', () => {
    const planned = planHibernate(hibernateRead({ record: record({ complete: false }), present: { backups: { redis: false }, releaseCopy: true } }));
    if (!planned.ok) throw new Error(planned.message);
    expect(kinds(planned.plan.steps)).toEqual(['backup-accessory', 'backup-accessory', 'shelve-server', 'shelve-server', 'wait-shelved', 'complete-hibernation']);
  });

  it('is a no-op that says so when the deployment already hibernates', () => {
    const planned = planHibernate(hibernateRead({ record: record(), servers: nodes('SHELVED_OFFLOADED') }));
    expect(planned).toEqual({ ok: true, plan: { command: 'depl hibernate', notes: [expect.stringContaining('already hibernating since 2026-12-01T08:00:00.000Z')], steps: [] } });
  });

  it('refuses what it cannot do safely, each with its code', () => {
    const refusal = (read: HibernateRead) => {
      const planned = planHibernate(read);
      return planned.ok ? 'planned' : planned.code;
    };
    expect(refusal(hibernateRead({ record: record({ phase: 'waking' }) }))).toBe('WAKE_INTERRUPTED');
    expect(refusal(hibernateRead({ record: 'unreadable' }))).toBe('HIBERNATION_RECORD_UNREADABLE');
    expect(refusal(hibernateRead({ servers: [] }))).toBe('HIBERNATE_NO_SERVERS');
    // shelved by hand: nothing was backed up
    expect(refusal(hibernateRead({ servers: [server('shop-nodes-0', 'SHELVED'), server('shop-nodes-1')] }))).toBe('HIBERNATE_PARTLY_SHELVED');
    // a backup is missing and the cluster is already partly down
    expect(refusal(hibernateRead({ record: record({ complete: false }), present: { backups: { redis: true }, releaseCopy: true }, servers: [server('shop-nodes-0', 'SHELVED'), server('shop-nodes-1')] })))
      .toBe('HIBERNATE_CANNOT_BACK_UP');
    expect(refusal(hibernateRead({ servers: [server('shop-nodes-0', 'ERROR'), server('shop-nodes-1')] }))).toBe('SERVER_STATE');
  });
});

describe('planWake', () => {
  it('marks the wake, unshelves each instance, waits for ACTIVE and the swarm, puts back what is missing, and waits for the live version', () => {
    const planned = planWake(wakeRead());
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan.steps).toEqual([
      { kind: 'record-wake', describe: expect.any(String), record: { ...record(), phase: 'waking', wakeStartedAt: '2026-12-06T12:00:00.000Z' } },
      { kind: 'unshelve-server', describe: 'unshelve shop-nodes-0 (SHELVED_OFFLOADED)', server: 'id-shop-nodes-0', name: 'shop-nodes-0' },
      { kind: 'unshelve-server', describe: 'unshelve shop-nodes-1 (SHELVED_OFFLOADED)', server: 'id-shop-nodes-1', name: 'shop-nodes-1' },
      { kind: 'wait-active', describe: expect.any(String), servers: ['id-shop-nodes-0', 'id-shop-nodes-1'], timeoutMs: 1_000 },
      { kind: 'wait-swarm', describe: expect.any(String), timeoutMs: 2_000 },
      { kind: 'restore-release-state', describe: expect.any(String), file: '/p/.depl/backups/shop-release-h.json' },
      { kind: 'restore-accessory', describe: expect.stringContaining('if it does not, restore it from /p/.depl/backups/shop-redis-h.tar'), accessory: 'redis', file: '/p/.depl/backups/shop-redis-h.tar' },
      { kind: 'wait-live', describe: expect.any(String), version: 'v2', hosts: ['shop.test', 'v2.shop.test'], timeoutMs: 3_000 },
      { kind: 'clear-record', describe: expect.any(String) },
    ]);
  });

  it('after an interrupted wake unshelves only what is still shelved and does not record the wake twice', () => {
    const planned = planWake(wakeRead({ record: record({ phase: 'waking', wakeStartedAt: '2026-12-06T11:00:00.000Z' }), servers: [server('shop-nodes-0'), server('shop-nodes-1', 'SHELVED_OFFLOADED', 'unshelving')] }));
    if (!planned.ok) throw new Error(planned.message);
    expect(kinds(planned.plan.steps)).toEqual(['wait-active', 'wait-swarm', 'restore-release-state', 'restore-accessory', 'wait-live', 'clear-record']);
  });

  it('is a no-op that says so when the deployment is awake', () => {
    const planned = planWake(wakeRead({ record: null, servers: nodes() }));
    expect(planned).toEqual({ ok: true, plan: { command: 'depl wake', notes: [expect.stringMatching(/^shop is awake/)], steps: [] } });
  });

  it('wakes instances shelved by hand, saying there is no backup to restore from', () => {
    const planned = planWake(wakeRead({ record: null, servers: [server('shop-nodes-0', 'SHELVED'), server('shop-nodes-1')] }));
    if (!planned.ok) throw new Error(planned.message);
    expect(kinds(planned.plan.steps)).toEqual(['unshelve-server', 'wait-active', 'wait-swarm']);
    expect(planned.plan.notes[0]).toContain('shelved by hand');
  });

  it('refuses an instance in a state Nova cannot unshelve from, naming it', () => {
    const planned = planWake(wakeRead({ servers: [server('shop-nodes-0', 'ERROR'), server('shop-nodes-1', 'SHELVED')] }));
    expect(planned).toMatchObject({ ok: false, code: 'SERVER_STATE', message: 'cannot wake: shop-nodes-0 is ERROR' });
  });
});

describe('the hibernation record', () => {
  it('reads back what it writes and refuses anything else', () => {
    expect(parseHibernationRecord(renderHibernationRecord(record()))).toEqual(record());
    expect(parseHibernationRecord('{"app":"shop"}')).toBeNull();
    expect(parseHibernationRecord('not json')).toBeNull();
  });

  it('says since when, and what to run when a command did not finish', () => {
    expect(describeHibernation(record())).toMatch(/^hibernating since 2026-12-01T08:00:00.000Z \(by ops@test\): every instance is shelved/);
    expect(describeHibernation(record({ complete: false }))).toContain('run depl hibernate again to finish it');
    expect(describeHibernation(record({ phase: 'waking', wakeStartedAt: 'T' }))).toMatch(/^waking since T/);
  });
});

describe('the local provider: node containers instead of Nova servers', () => {
  const containers = (status: string) => ['node-1', 'node-2', 'node-3'].map((name) => server(name, status));

  it('hibernate stops each running node container (Docker\'s states), and the record says they are containers', () => {
    const planned = planHibernate(hibernateRead({ instances: 'node-containers', servers: containers('running') }));
    if (!planned.ok) throw new Error(planned.message);
    expect(kinds(planned.plan.steps)).toEqual(['record-hibernation', 'keep-release-state', 'backup-accessory', 'backup-accessory', 'shelve-server', 'shelve-server', 'shelve-server', 'wait-shelved', 'complete-hibernation']);
    expect(planned.plan.steps[0]).toMatchObject({ record: { instances: 'node-containers' } });
    expect(planned.plan.steps[4]!.describe).toMatch(/^stop node-1 \(running; its \/var\/lib\/docker volume/);
    expect(planned.plan.steps[7]!.describe).toBe('wait until every node container (node-1, node-2, node-3) is stopped (exited)');
    // exited containers are at rest: a complete record with every container exited is a no-op
    const again = planHibernate(hibernateRead({ instances: 'node-containers', servers: containers('exited'), record: record({ instances: 'node-containers' }) }));
    expect(again).toMatchObject({ ok: true, plan: { steps: [], notes: [expect.stringContaining('every node container is stopped')] } });
    // a container stopped by hand while depl did not hibernate: nothing was backed up
    expect(planHibernate(hibernateRead({ instances: 'node-containers', servers: [server('node-1', 'exited'), server('node-2', 'running')] })))
      .toMatchObject({ ok: false, code: 'HIBERNATE_PARTLY_SHELVED', message: expect.stringContaining('node container node-1 is stopped (exited)') });
    expect(planHibernate(hibernateRead({ instances: 'node-containers', servers: [server('node-1', 'dead'), server('node-2', 'running')] })))
      .toMatchObject({ ok: false, code: 'SERVER_STATE', message: 'cannot stop: node-1 is dead', hint: expect.stringContaining('docker ps -a') });
  });

  it('wake starts each stopped container, waits for them to run and the swarm to be whole, then checks and brings the live version back', () => {
    const planned = planWake(wakeRead({ instances: 'node-containers', servers: containers('exited'), record: record({ instances: 'node-containers' }) }));
    if (!planned.ok) throw new Error(planned.message);
    expect(kinds(planned.plan.steps)).toEqual(['record-wake', 'unshelve-server', 'unshelve-server', 'unshelve-server', 'wait-active', 'wait-swarm', 'restore-release-state', 'restore-accessory', 'wait-live', 'clear-record']);
    expect(planned.plan.steps[1]!.describe).toBe('start node-1 (exited)');
    expect(planned.plan.steps[4]!.describe).toBe('wait until every node container (node-1, node-2, node-3) is running');
    // running containers and no record: awake; a Nova status means nothing to containers
    expect(planWake(wakeRead({ instances: 'node-containers', servers: containers('running'), record: null }))).toMatchObject({ ok: true, plan: { steps: [] } });
    expect(planWake(wakeRead({ instances: 'node-containers', servers: containers('SHELVED') }))).toMatchObject({ ok: false, code: 'SERVER_STATE' });
  });

  it('the record keeps what the instances are, and refuses a kind it does not know', () => {
    expect(parseHibernationRecord(renderHibernationRecord(record({ instances: 'node-containers' })))).toEqual(record({ instances: 'node-containers' }));
    expect(parseHibernationRecord(JSON.stringify({ ...record(), instances: 'lxc' }))).toBeNull();
  });
});

describe('where the backups go: Swift when the cloud has it, else the operator\'s folder', () => {
  const swift = { kind: 'swift' as const, folder: '/p/.depl/backups', container: 'shop-depl-backups', endpoint: 'https://swift.test/v1/AUTH_p' };
  const md5 = 'd41d8cd98f00b204e9800998ecf8427e';

  it('with an object store, uploads every kept file before shelving, and the record names the container', () => {
    const planned = planHibernate(hibernateRead({ store: swift }));
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan.steps.filter((s) => s.kind === 'upload-backup')).toEqual([
      { kind: 'upload-backup', describe: expect.stringContaining('to Swift as shop-depl-backups/shop-release-h.json'), file: '/p/.depl/backups/shop-release-h.json', container: 'shop-depl-backups', object: 'shop-release-h.json' },
      { kind: 'upload-backup', describe: expect.any(String), file: '/p/.depl/backups/shop-redis-h.tar', container: 'shop-depl-backups', object: 'shop-redis-h.tar' },
      { kind: 'upload-backup', describe: expect.any(String), file: '/p/.depl/backups/shop-db-h.tar', container: 'shop-depl-backups', object: 'shop-db-h.tar' },
    ]);
    expect(kinds(planned.plan.steps).indexOf('upload-backup')).toBeGreaterThan(kinds(planned.plan.steps).lastIndexOf('backup-accessory'));
    expect(kinds(planned.plan.steps).lastIndexOf('upload-backup')).toBeLessThan(kinds(planned.plan.steps).indexOf('shelve-server'));
    expect(planned.plan.steps[0]).toMatchObject({ record: { swift: { container: 'shop-depl-backups', endpoint: swift.endpoint, objects: {} } } });
    expect(planned.plan.notes).toContain('the backups go to /p/.depl/backups and to the private Swift container shop-depl-backups (https://swift.test/v1/AUTH_p), where another operator\'s depl wake finds them');
  });

  it('after an interrupted run uploads only what Swift does not hold with its recorded MD5, even once instances are shelved', () => {
    const earlier = record({
      complete: false, backups: { redis: '/p/.depl/backups/shop-redis-h.tar', db: '/p/.depl/backups/shop-db-h.tar' },
      swift: { container: 'shop-depl-backups', endpoint: swift.endpoint, objects: { '/p/.depl/backups/shop-release-h.json': { object: 'shop-release-h.json', md5 }, '/p/.depl/backups/shop-redis-h.tar': { object: 'shop-redis-h.tar', md5 } } },
    });
    const planned = planHibernate(hibernateRead({
      store: swift, record: earlier, present: { backups: { redis: true, db: true }, releaseCopy: true },
      uploaded: { '/p/.depl/backups/shop-release-h.json': true, '/p/.depl/backups/shop-redis-h.tar': false },
      servers: [server('shop-nodes-0', 'SHELVED_OFFLOADED'), server('shop-nodes-1')],
    }));
    if (!planned.ok) throw new Error(planned.message);
    // the record is not in Swift yet (the run stopped before): it goes there after the backups, before any shelve
    expect(planned.plan.steps.map((s) => (s.kind === 'upload-backup' ? s.object : s.kind))).toEqual(['shop-redis-h.tar', 'shop-db-h.tar', 'share-record', 'shelve-server', 'wait-shelved', 'complete-hibernation']);
  });

  it('shares the record in Swift after the backups and before any shelve; again only when a copy is behind', () => {
    const planned = planHibernate(hibernateRead({ store: swift }));
    if (!planned.ok) throw new Error(planned.message);
    const order = kinds(planned.plan.steps);
    expect(order.indexOf('share-record')).toBe(order.lastIndexOf('upload-backup') + 1);
    expect(order.indexOf('share-record')).toBe(order.indexOf('shelve-server') - 1);
    expect(planned.plan.steps.find((s) => s.kind === 'share-record')).toEqual({
      kind: 'share-record', container: 'shop-depl-backups', object: 'hibernation.json', inventory: null, describe: expect.stringContaining('write the hibernation record to Swift as shop-depl-backups/hibernation.json'),
    });
    // the inventory goes with it when this machine has one, and a machine without one fetches it first thing
    const withInventory = planHibernate(hibernateRead({ store: swift, inventoryFile: '/p/.depl/inventory.json' }));
    expect(withInventory.ok && withInventory.plan.steps.find((s) => s.kind === 'share-record')).toMatchObject({ inventory: '/p/.depl/inventory.json', describe: expect.stringContaining('with the inventory (inventory.json)') });
    const inventory = { object: 'inventory.json', md5: 'd41d8cd98f00b204e9800998ecf8427e' };
    const sharedWith = record({ swift: { container: 'shop-depl-backups', endpoint: swift.endpoint, objects: {}, recordShared: true, inventory } });
    const fetching = planWake(wakeRead({ record: sharedWith, inventory: { file: '/q/.depl/inventory.json', present: false } }));
    expect(fetching.ok && fetching.plan.steps[0]).toEqual({ kind: 'fetch-backup', container: 'shop-depl-backups', object: 'inventory.json', md5: inventory.md5, file: '/q/.depl/inventory.json', describe: expect.stringContaining('download the inventory') });
    const having = planWake(wakeRead({ record: sharedWith, inventory: { file: '/q/.depl/inventory.json', present: true } }));
    expect(having.ok && kinds(having.plan.steps)).not.toContain('fetch-backup');
    const shared = record({ swift: { container: 'shop-depl-backups', endpoint: swift.endpoint, objects: {}, recordShared: true } });
    const asleep = { store: swift, record: shared, present: { backups: { redis: true }, releaseCopy: true }, servers: nodes('SHELVED_OFFLOADED'), accessories: ['redis'] };
    // complete, every instance shelved, both copies the same: nothing to do
    expect(planHibernate(hibernateRead({ ...asleep, copies: { localCurrent: true, cloudCurrent: true, cloudGone: false } }))).toMatchObject({ ok: true, plan: { steps: [] } });
    // a run stopped between this machine's copy and Swift's: the copy behind is written again, nothing else
    const behind = planHibernate(hibernateRead({ ...asleep, copies: { localCurrent: true, cloudCurrent: false, cloudGone: false } }));
    expect(behind.ok && kinds(behind.plan.steps)).toEqual(['share-record']);
    // Swift's copy removed by a wake (elsewhere, or here and stopped): the old backups must not be reused
    expect(planHibernate(hibernateRead({ ...asleep, servers: nodes(), copies: { localCurrent: true, cloudCurrent: false, cloudGone: true } })))
      .toMatchObject({ ok: false, code: 'HIBERNATION_RECORD_STALE', hint: expect.stringContaining('Run depl wake first') });
  });

  it('wake removes Swift\'s copy of a shared record before this machine\'s', () => {
    const shared = record({ swift: { container: 'shop-depl-backups', endpoint: swift.endpoint, objects: {}, recordShared: true } });
    const planned = planWake(wakeRead({ record: shared }));
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan.steps.at(-1)).toEqual({ kind: 'clear-record', describe: 'remove Swift\'s copy shop-depl-backups/hibernation.json, then /p/.depl/hibernation.json: shop is awake' });
    expect(parseHibernationRecord(renderHibernationRecord(shared))).toEqual(shared);
    expect(parseHibernationRecord(JSON.stringify({ ...shared, swift: { ...shared.swift, recordShared: 'yes' } }))).toBeNull();
  });

  it('without one (or on the local provider), keeps the operator\'s folder and plans no upload', () => {
    const planned = planHibernate(hibernateRead({ store: { kind: 'folder', folder: '/p/.depl/backups' } }));
    if (!planned.ok) throw new Error(planned.message);
    expect(kinds(planned.plan.steps)).not.toContain('upload-backup');
    expect(planned.plan.steps[0]).not.toHaveProperty('record.swift');
    expect(planned.plan.notes).toContain('the backups go to /p/.depl/backups (no object store in the cloud\'s catalog)');
  });

  it('wake downloads, first and MD5-checked, each backup this machine lacks, and restores from where it put it', () => {
    const withSwift = record({ swift: { container: 'shop-depl-backups', endpoint: swift.endpoint, objects: { '/p/.depl/backups/shop-release-h.json': { object: 'shop-release-h.json', md5 }, '/p/.depl/backups/shop-redis-h.tar': { object: 'shop-redis-h.tar', md5 } } } });
    const elsewhere = (name: string) => ({ file: `/q/.depl/backups/${name}`, present: false });
    const planned = planWake(wakeRead({ record: withSwift, local: { '/p/.depl/backups/shop-release-h.json': elsewhere('shop-release-h.json'), '/p/.depl/backups/shop-redis-h.tar': elsewhere('shop-redis-h.tar') } }));
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan.steps.slice(0, 2)).toEqual([
      { kind: 'fetch-backup', describe: expect.stringContaining('download shop-depl-backups/shop-release-h.json from Swift'), container: 'shop-depl-backups', object: 'shop-release-h.json', md5, file: '/q/.depl/backups/shop-release-h.json' },
      { kind: 'fetch-backup', describe: expect.any(String), container: 'shop-depl-backups', object: 'shop-redis-h.tar', md5, file: '/q/.depl/backups/shop-redis-h.tar' },
    ]);
    expect(planned.plan.steps.find((s) => s.kind === 'restore-accessory')).toMatchObject({ accessory: 'redis', file: '/q/.depl/backups/shop-redis-h.tar' });
    expect(planned.plan.steps.find((s) => s.kind === 'restore-release-state')).toMatchObject({ file: '/q/.depl/backups/shop-release-h.json' });
    // downloaded already (a wake killed after it): not fetched again
    const again = planWake(wakeRead({ record: withSwift, local: { '/p/.depl/backups/shop-redis-h.tar': { file: '/q/.depl/backups/shop-redis-h.tar', present: true } } }));
    expect(again.ok && kinds(again.plan.steps)).not.toContain('fetch-backup');
  });

  it('wake refuses, changing nothing, when a backup is neither on this machine nor in Swift', () => {
    const planned = planWake(wakeRead({ local: { '/p/.depl/backups/shop-redis-h.tar': { file: '/q/.depl/backups/shop-redis-h.tar', present: false } } }));
    expect(planned).toMatchObject({ ok: false, code: 'WAKE_BACKUP_MISSING', message: expect.stringContaining('uploaded nothing to Swift'), hint: expect.stringContaining('/q/.depl/backups/shop-redis-h.tar') });
  });

  it('the record keeps the uploads, and refuses one whose MD5 is not an MD5', () => {
    const withSwift = record({ swift: { container: 'c', endpoint: 'e', objects: { '/f': { object: 'f', md5 } } } });
    expect(parseHibernationRecord(renderHibernationRecord(withSwift))).toEqual(withSwift);
    expect(parseHibernationRecord(JSON.stringify({ ...withSwift, swift: { container: 'c', endpoint: 'e', objects: { '/f': { object: 'f', md5: 'x' } } } }))).toBeNull();
  });
});
