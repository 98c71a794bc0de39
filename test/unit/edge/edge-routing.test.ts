import { describe, expect, it } from 'vitest';
import type { Routing as EdgeState } from '../../../src/plan/release-state.js';
import { parseEdgeReport, renderRoutingTable } from '../../../src/plan/edge-routing.js';

const v = (label: string, extra: Partial<EdgeState['versions'][number]['upstream']> = {}) => ({ label, upstream: { service: `shop-${label}-api`, port: 8000, ...extra } });
const base: EdgeState = { app: 'shop', domain: 'shop.example.org', versions: [v('20261122-130512'), v('20261123-090000')] };

describe('renderRoutingTable', () => {
  it('lists the domain, live, canary and every installed version with its upstream, between a header and an end line', () => {
    const { text, generation } = renderRoutingTable({ ...base, live: '20261122-130512', canary: { version: '20261123-090000', weight: 12.5 } });
    expect(text).toBe([
      'depl-routing 1',
      `generation ${generation}`,
      'domain shop.example.org',
      'live 20261122-130512',
      'canary 20261123-090000 12.5',
      'version 20261122-130512 http://shop-20261122-130512-api:8000',
      'version 20261123-090000 http://shop-20261123-090000-api:8000',
      'end',
      '',
    ].join('\n'));
  });

  it('proxies to a given address instead of the service name (the loopback edge)', () => {
    expect(renderRoutingTable({ ...base, versions: [v('a', { address: '127.0.0.1:4001' })] }).text).toContain('version a http://127.0.0.1:4001\n');
  });

  it('leaves out a canary at weight 0 or equal to live, and live before the first switch', () => {
    expect(renderRoutingTable(base).text).not.toMatch(/^live /m);
    expect(renderRoutingTable({ ...base, live: '20261122-130512', canary: { version: '20261123-090000', weight: 0 } }).text).not.toContain('canary');
    expect(renderRoutingTable({ ...base, live: '20261122-130512', canary: { version: '20261122-130512', weight: 20 } }).text).not.toContain('canary');
  });

  it('gives equal routing the same generation and any change another', () => {
    const live = renderRoutingTable({ ...base, live: '20261122-130512' }).generation;
    expect(live).toMatch(/^[0-9a-f]{8}$/);
    expect(renderRoutingTable({ ...base, live: '20261122-130512' }).generation).toBe(live);
    expect(renderRoutingTable({ ...base, live: '20261123-090000' }).generation).not.toBe(live);
    expect(renderRoutingTable({ ...base, live: '20261122-130512', canary: { version: '20261123-090000', weight: 30 } }).generation).not.toBe(live);
    expect(renderRoutingTable({ ...base, live: '20261122-130512', canary: { version: '20261123-090000', weight: 31 } }).generation)
      .not.toBe(renderRoutingTable({ ...base, live: '20261122-130512', canary: { version: '20261123-090000', weight: 30 } }).generation);
  });

  it.each([
    [{ ...base, domain: 'shop example.org' }, /domain "shop example.org"/],
    [{ ...base, app: 'Shop' }, /app name "Shop" has upper-case/],
    [{ ...base, versions: [v('v1 evil')] }, /version label "v1 evil"/],
    [{ ...base, versions: [{ label: 'v1', upstream: { service: 'x y', port: 80 } }] }, /upstream service "x y"/],
    [{ ...base, versions: [v('v1', { port: 0 })] }, /upstream port 0/],
    [{ ...base, versions: [v('v1', { address: '127.0.0.1:80\nlive v1' })] }, /upstream address/],
    [{ ...base, versions: [v('v1'), v('v1')] }, /lists version "v1" twice/],
    [{ ...base, live: 'v9' }, /live version "v9" is not installed/],
    [{ ...base, live: '20261122-130512', canary: { version: 'v9', weight: 10 } }, /canary version "v9" is not installed/],
    [{ ...base, live: '20261122-130512', canary: { version: '20261123-090000', weight: 101 } }, /outside 0..100/],
    [{ ...base, canary: { version: '20261123-090000', weight: 10 } }, /needs a live version/],
  ])('refuses a state that would change what the table means (%#)', (state, message) => {
    expect(() => renderRoutingTable(state as EdgeState)).toThrow(message);
  });
});

describe('parseEdgeReport', () => {
  it('reads the configuration and routing generations the edge reports', () => {
    expect(parseEdgeReport('a492041a 89c3b16c\n')).toEqual({ config: 'a492041a', routing: '89c3b16c' });
    expect(parseEdgeReport('a492041a none\n')).toEqual({ config: 'a492041a', routing: null });
    // an edge running a configuration from before the routing table answers its generation alone
    expect(parseEdgeReport('0badf00d\n')).toEqual({ config: '0badf00d', routing: null });
    expect(parseEdgeReport('')).toEqual({ config: '', routing: null });
  });
});
