/**
 * What the edge (nginx on the edge node) should serve: the input of src/plan/nginx.ts.
 * buildinst adds versions, switch/canary set live and canary; the edge adapter renders and applies it.
 */
export interface EdgeUpstream {
  /** Swarm service name, resolved through Docker's DNS on the overlay network (dnsrr). */
  service: string;
  port: number;
  /**
   * `host:port` (an IPv4 address or a DNS name) to proxy to instead of `service:port` through Docker's DNS:
   * for an edge that is not on the overlay network (the loopback nginx of the integration tests).
   */
  address?: string;
}

export interface EdgeVersion {
  label: string;
  /** The version's http service (the one with `http: true`). */
  upstream: EdgeUpstream;
}

export interface EdgeState {
  app: string;
  domain: string;
  versions: EdgeVersion[];
  /** Served at <domain>. */
  live?: string;
  /** A share of <domain>'s traffic, split by a stable client key. */
  canary?: { version: string; weight: number };
}
