import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { entryAddressFromOutputs } from '../../../src/plan/heat.js';
import {
  domainRecordNames, domainStatus, domainStatusLines, ownerDescription, planDomainRecordRemoval, planDomainRecords, proposeDomain, zoneHolding, type RecordSetView,
} from '../../../src/plan/domain-records.js';
import { tlsSettings } from '../../../src/plan/tls/certificates.js';

const zone = 'myproject.cloud.edu.au.';
const domain = 'crawler.myproject.cloud.edu.au';
const apex = 'crawler.myproject.cloud.edu.au.';
const wildcard = '*.crawler.myproject.cloud.edu.au.';
const ours = (name: string, records: string[], extra: Partial<RecordSetView> = {}): RecordSetView => ({ id: `id-${name}`, name, type: 'A', records, status: 'ACTIVE', description: ownerDescription('crawler'), ...extra });
const theirs = (name: string, type: string, records: string[]): RecordSetView => ({ id: `their-${name}-${type}`, name, type, records, status: 'ACTIVE', description: null });
const plan = (existing: RecordSetView[], address: string | null = '203.0.113.10') => planDomainRecords({ app: 'crawler', domain, zone, address, existing });

describe('the zero-config domain records node-up keeps (as data)', () => {
  it('names the apex and the wildcard, fully qualified', () => {
    expect(domainRecordNames(domain)).toEqual({ apex, wildcard });
    expect(domainRecordNames(`${domain}.`)).toEqual({ apex, wildcard });
  });

  it('an empty zone: creates both A records with depl\'s mark', () => {
    expect(plan([])).toEqual({
      command: 'depl node-up (DNS records)',
      notes: [],
      steps: [
        { kind: 'create-record', describe: `create ${apex} A 203.0.113.10 in zone ${zone}`, name: apex, type: 'A', records: ['203.0.113.10'], description: ownerDescription('crawler') },
        { kind: 'create-record', describe: `create ${wildcard} A 203.0.113.10 in zone ${zone}`, name: wildcard, type: 'A', records: ['203.0.113.10'], description: ownerDescription('crawler') },
      ],
    });
  });

  it('records depl made that are right are left alone; the TXT of a DNS-01 challenge and other names do not matter', () => {
    const result = plan([ours(apex, ['203.0.113.10']), ours(wildcard, ['203.0.113.10']), theirs(`_acme-challenge.${apex}`, 'TXT', ['"x"']), theirs(`v1.${apex}`, 'A', ['198.51.100.1'])]);
    expect(result).toMatchObject({ steps: [], notes: [`${apex} A 203.0.113.10: already right`, `${wildcard} A 203.0.113.10: already right`] });
  });

  it('a record depl made that points elsewhere (a re-made cluster) is updated; one Designate failed to publish is sent again', () => {
    const result = plan([ours(apex, ['198.51.100.7']), ours(wildcard, ['203.0.113.10'], { status: 'ERROR' })]);
    expect(result).toMatchObject({
      steps: [
        { kind: 'update-record', id: `id-${apex}`, name: apex, records: ['203.0.113.10'], from: ['198.51.100.7'], describe: `point ${apex} A at 203.0.113.10 (was 198.51.100.7)` },
        { kind: 'update-record', id: `id-${wildcard}`, name: wildcard, records: ['203.0.113.10'], describe: `point ${wildcard} A at 203.0.113.10 (Designate reported ERROR publishing it: sent again)` },
      ],
    });
  });

  it('records depl did not make in the way are refused, each named, with the fix', () => {
    const result = plan([theirs(apex, 'A', ['198.51.100.9']), theirs(wildcard, 'CNAME', ['elsewhere.example.org.']), ours(wildcard, ['203.0.113.10'])]);
    expect(result).toEqual({
      refuse: `the zone ${zone} already has records depl did not make at ${domain}: ${apex} A 198.51.100.9; ${wildcard} CNAME elsewhere.example.org.`,
      hint: expect.stringContaining(`openstack recordset delete ${zone} <name>`),
      conflicts: [`${apex} A 198.51.100.9`, `${wildcard} CNAME elsewhere.example.org.`],
    });
    // another app's mark is not depl's mark for this app
    expect(plan([ours(apex, ['198.51.100.9'], { description: ownerDescription('other') })])).toMatchObject({ conflicts: [`${apex} A 198.51.100.9`] });
    expect(plan([theirs(apex, 'AAAA', ['2001:db8::1'])])).toMatchObject({ conflicts: [`${apex} AAAA 2001:db8::1`] });
  });

  it('someone\'s A record that already holds the entry address is kept as theirs', () => {
    const result = plan([theirs(apex, 'A', ['203.0.113.10'])]);
    expect(result).toMatchObject({ notes: [`${apex} A 203.0.113.10: already right (not made by depl, so node-down leaves it)`], steps: [{ kind: 'create-record', name: wildcard }] });
  });

  it('before the stack exists (address unknown): depl\'s own records are kept for later, anyone else\'s is refused', () => {
    expect(plan([ours(apex, ['198.51.100.7'])], null)).toMatchObject({
      steps: [{ kind: 'create-record', name: wildcard, records: [], describe: `create ${wildcard} A (the entry address, known once the stack exists) in zone ${zone}` }],
      notes: [`${apex} A 198.51.100.7: made by depl; node-up points it at the entry address once the stack exists`],
    });
    expect(plan([theirs(apex, 'A', ['203.0.113.10'])], null)).toMatchObject({ conflicts: [`${apex} A 203.0.113.10`] });
  });

  it('node-down removes exactly the records depl made, and says which it leaves', () => {
    const removal = planDomainRecordRemoval({ app: 'crawler', domain, zone, existing: [ours(apex, ['203.0.113.10']), theirs(wildcard, 'A', ['203.0.113.10']), theirs(`_acme-challenge.${apex}`, 'TXT', ['"x"'])] });
    expect(removal).toEqual({
      command: 'depl node-down (DNS records)',
      notes: [`${wildcard} A 203.0.113.10: not made by depl, left as it is`],
      steps: [{ kind: 'delete-record', describe: `delete ${apex} A 203.0.113.10 from zone ${zone}`, id: `id-${apex}`, name: apex, type: 'A', records: ['203.0.113.10'] }],
    });
  });
});

describe('the domain depl init proposes', () => {
  const zones = (...names: string[]) => names.map((name, i) => ({ id: `z${i}`, name }));
  it('one zone: <app>.<zone>', () => {
    expect(proposeDomain({ app: 'crawler', zones: zones(zone) })).toEqual({ kind: 'proposed', domain, zone, why: `the project's DNS zone is ${zone}`, others: [] });
  });
  it('several: the one named after the project (Nectar\'s <project>.cloud.edu.au.), others listed', () => {
    expect(proposeDomain({ app: 'crawler', zones: zones('lab.example.org.', 'sub.myproject.cloud.edu.au.', zone), projectName: 'MyProject' })).toEqual({
      kind: 'proposed', domain, zone, why: `the project has 3 DNS zones; ${zone} is the one named after the project "MyProject"`, others: ['lab.example.org.', 'sub.myproject.cloud.edu.au.'],
    });
    expect(proposeDomain({ app: 'web', zones: zones('a.org.', 'my-lab.cloud.edu.au.'), projectName: 'my_lab' })).toMatchObject({ kind: 'proposed', zone: 'my-lab.cloud.edu.au.' });
  });
  it('several and none named after the project: the operator chooses; none at all: nothing to propose', () => {
    expect(proposeDomain({ app: 'crawler', zones: zones('b.org.', 'a.org.'), projectName: 'p1' })).toEqual({
      kind: 'ambiguous', zones: ['a.org.', 'b.org.'], why: 'the project has 2 DNS zones (a.org., b.org.) and none is named after the project "p1"',
    });
    expect(proposeDomain({ app: 'crawler', zones: [] })).toEqual({ kind: 'no-zone', why: 'the project has no DNS zone in Designate' });
  });
  it('a typed domain belongs to the longest zone holding it, or to none', () => {
    expect(zoneHolding('x.sub.a.org', ['a.org.', 'sub.a.org.'])).toBe('sub.a.org.');
    expect(zoneHolding('a.org', ['a.org.'])).toBe('a.org.');
    expect(zoneHolding('mine.example.net', ['a.org.'])).toBeUndefined();
  });
});

describe('provider.dns in depl.yaml', () => {
  const config = (extra: string) => `app: crawler\ndomain: ${domain}\nprovider: { type: openstack${extra} }\nservices: { web: { image: web, port: 80, http: true } }\n`;
  it('turns TLS to DNS-01 on the zone when tls: is not set', () => {
    expect(tlsSettings(parseConfig(config(`, dns: { zone: "${zone}" }`)))).toEqual({ mode: 'acme', directory: 'letsencrypt', challenge: 'dns-01' });
    expect(tlsSettings(parseConfig(config('')))).toMatchObject({ challenge: 'http-01' });
  });
  it('keeps DNS-01 on the zone when tls: is set without a challenge (an e-mail, another ACME directory); a challenge given wins', () => {
    const zoned = (tls: string) => parseConfig(`${config(`, dns: { zone: "${zone}" }`)}tls: ${tls}\n`);
    expect(tlsSettings(zoned('{ mode: acme, email: ops@example.edu }'))).toEqual({ mode: 'acme', directory: 'letsencrypt', email: 'ops@example.edu', challenge: 'dns-01' });
    expect(tlsSettings(zoned('{ mode: acme, directory: letsencrypt-staging }'))).toMatchObject({ directory: 'letsencrypt-staging', challenge: 'dns-01' });
    expect(tlsSettings(zoned('{ mode: acme, challenge: http-01 }'))).toMatchObject({ challenge: 'http-01' });
    // without the zone, an ACME section still means HTTP-01
    expect(tlsSettings(parseConfig(`${config('')}tls: { mode: acme, email: ops@example.edu }\n`))).toMatchObject({ challenge: 'http-01' });
  });
  it('takes tls.dnsCloud (the renewal task\'s credential) with the zone\'s DNS-01 default, and refuses it where the challenge is HTTP-01', () => {
    expect(tlsSettings(parseConfig(`${config(`, dns: { zone: "${zone}" }`)}tls: { mode: acme, dnsCloud: renewer }\n`))).toMatchObject({ challenge: 'dns-01', dnsCloud: 'renewer' });
    expect(() => parseConfig(`${config('')}tls: { mode: acme, dnsCloud: renewer }\n`)).toThrow(/tls\.dnsCloud.*only used with challenge: dns-01/s);
  });
  it('refuses a domain outside the zone, and a zone without its trailing dot', () => {
    expect(() => parseConfig(config(', dns: { zone: "other.cloud.edu.au." }'))).toThrow(/domain.*not a name under provider.dns.zone "other.cloud.edu.au."/s);
    expect(() => parseConfig(config(', dns: { zone: "myproject.cloud.edu.au" }'))).toThrow(/must end with "."/);
  });
});

describe('the entry address the records point at', () => {
  const outputs = [{ output_key: 'node_names', output_value: ['s-0', 's-1'] }, { output_key: 'node_addresses', output_value: ['10.0.0.5', '10.0.0.6'] }];
  it('is the manager\'s (where the edge runs), or the template\'s entry_address output (a floating IP)', () => {
    expect(entryAddressFromOutputs('s', outputs)).toBe('10.0.0.5');
    expect(entryAddressFromOutputs('s', [...outputs, { output_key: 'entry_address', output_value: '203.0.113.4' }])).toBe('203.0.113.4');
    expect(() => entryAddressFromOutputs('s', [...outputs, { output_key: 'entry_address', output_value: ['a'] }])).toThrow(/is not an address/);
  });
});

describe('domainStatus (depl status)', () => {
  const mark = ownerDescription('shop');
  const base = { app: 'shop', domain: 'shop.p.cloud.edu.au', zone: 'p.cloud.edu.au.' };
  it('each name\'s A record, whether it is depl\'s, published, and the entry address', () => {
    const status = domainStatus({
      ...base, entryAddress: '203.0.113.5',
      existing: [
        { id: '1', name: 'shop.p.cloud.edu.au.', type: 'A', records: ['203.0.113.5'], status: 'ACTIVE', description: mark },
        { id: '2', name: '*.shop.p.cloud.edu.au.', type: 'A', records: ['198.51.100.7'], status: 'PENDING', description: 'by hand' },
        { id: '3', name: '*.shop.p.cloud.edu.au.', type: 'AAAA', records: ['2001:db8::1'], description: null },
      ],
    });
    expect(status.records).toEqual([
      { name: 'shop.p.cloud.edu.au.', addresses: ['203.0.113.5'], status: 'ACTIVE', depl: true, matches: true },
      { name: '*.shop.p.cloud.edu.au.', addresses: ['198.51.100.7'], status: 'PENDING', depl: false, matches: false },
    ]);
    expect(domainStatusLines(status)).toEqual([
      'zone p.cloud.edu.au., entry address 203.0.113.5',
      "shop.p.cloud.edu.au. A 203.0.113.5 (depl's): matches the entry address",
      '*.shop.p.cloud.edu.au. A 198.51.100.7, PENDING: does NOT match the entry address (not made by depl)',
      "also at depl's names: *.shop.p.cloud.edu.au. AAAA 2001:db8::1 (sends some clients elsewhere)",
    ]);
  });

  it('an unknown entry address (no stack): the records are shown, not judged', () => {
    const status = domainStatus({ ...base, entryAddress: null, existing: [{ id: '1', name: 'shop.p.cloud.edu.au.', type: 'A', records: ['203.0.113.5'], description: mark }] });
    expect(status.records.map((r) => r.matches)).toEqual([null, null]);
    expect(domainStatusLines(status)[1]).toBe("shop.p.cloud.edu.au. A 203.0.113.5 (depl's): entry address unknown");
  });
});
