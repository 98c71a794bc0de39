import ipaddr from 'ipaddr.js';

/**
 * SSRF policy: which IP addresses a fetch may connect to. Only globally routable unicast addresses pass,
 * unless the service config allows specific networks (the tests' sites live on 127.0.0.1) or host names.
 * Pure: the connector in worker/safe-fetch.ts calls this for every address it is about to use.
 */
export interface AllowList {
  hosts: string[];
  networks: string[];
}

export interface AddressPolicy {
  /** Null when the address may be used, else why not. */
  checkAddress(address: string): string | null;
  /** Host names the operator trusts whatever they resolve to. */
  hostAllowed(hostname: string): boolean;
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

export function parseNetworks(networks: string[]): Cidr[] {
  return networks.map((network) => {
    if (network.includes('/')) return ipaddr.parseCIDR(network);
    const address = ipaddr.parse(network);
    return [address, address.kind() === 'ipv4' ? 32 : 128];
  });
}

/** Throws with the offending entry when a network in the allow list is not an address or CIDR. */
export function validateNetwork(network: string): string | null {
  try {
    parseNetworks([network]);
    return null;
  } catch {
    return `"${network}" is not an IP address or CIDR (like 127.0.0.1/32 or fd00::/8)`;
  }
}

export function createAddressPolicy(allow: AllowList): AddressPolicy {
  const networks = parseNetworks(allow.networks);
  const hosts = new Set(allow.hosts.map((h) => h.toLowerCase()));
  return {
    hostAllowed: (hostname) => hosts.has(hostname.toLowerCase()),
    checkAddress(raw) {
      const literal = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
      if (!ipaddr.isValid(literal)) return `"${raw}" is not an IP address`;
      let address = ipaddr.parse(literal);
      // ::ffff:127.0.0.1 is 127.0.0.1 on the wire.
      if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
        address = (address as ipaddr.IPv6).toIPv4Address();
      }
      for (const [net, bits] of networks) {
        if (net.kind() === address.kind() && address.match(net, bits)) return null;
      }
      const range = address.range();
      if (range !== 'unicast') return `${address.toString()} is a ${range} address`;
      return null;
    },
  };
}
