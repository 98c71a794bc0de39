import type { Reply } from './http.js';

/**
 * The project's quotas as Nova, Neutron and Cinder report them, with usage that follows what the emulated
 * cloud holds (Heat's servers with their flavors, its security groups and volumes), and Nova's refusal of a
 * server over quota (403, Nova's own message) that makes a real Heat stack fail halfway.
 * Shapes: Nova `GET /limits` (absolute, -1 unlimited), Neutron `GET /v2.0/quotas/{project}/details.json`
 * ({limit, used, reserved} per resource), Cinder `GET /v3/{project}/os-quota-sets/{project}?usage=true`
 * ({limit, in_use, reserved, allocated}).
 */

export interface EmulatedFlavor {
  id: string;
  name: string;
  vcpus: number;
  /** MB */
  ram: number;
  disk: number;
}

/** Nectar-like flavors (vCPUs and RAM as Nectar publishes them). */
export const DEFAULT_FLAVORS: EmulatedFlavor[] = [
  { id: '0f8a1c9e-t3xs', name: 't3.xsmall', vcpus: 1, ram: 1024, disk: 30 },
  { id: '1f8a1c9e-m3s', name: 'm3.small', vcpus: 2, ram: 4096, disk: 30 },
  { id: '2f8a1c9e-m3m', name: 'm3.medium', vcpus: 4, ram: 8192, disk: 30 },
  { id: '3f8a1c9e-p3s', name: 'p3.small', vcpus: 2, ram: 4096, disk: 30 },
];

/** Limits a test may set; -1 is unlimited, as the APIs say it. */
export interface QuotaLimits {
  instances: number;
  cores: number;
  ram: number;
  floatingip: number;
  network: number;
  port: number;
  security_group: number;
  security_group_rule: number;
  volumes: number;
  gigabytes: number;
}

/** Roomy enough that tests making many stacks in one emulator are not refused unless they set a quota. */
export const DEFAULT_LIMITS: QuotaLimits = {
  instances: 100, cores: 200, ram: 819200,
  floatingip: 2, network: 3, port: 50, security_group: 10, security_group_rule: 100,
  volumes: 10, gigabytes: 1000,
};

/** What the cloud holds now, read from the emulated services. */
export interface Holdings {
  /** One flavor name (or id) per server. */
  servers: string[];
  /** Rules per security group made by stacks (the project's default group is added here). */
  securityGroups: number[];
  /** Size (GB) per volume. */
  volumes: number[];
  floatingIps: number;
}

export class EmulatedQuotas {
  readonly limits: QuotaLimits;

  constructor(
    limits: Partial<QuotaLimits>,
    readonly flavors: EmulatedFlavor[],
    private readonly holdings: () => Holdings,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Change limits between steps of a test. */
  set(limits: Partial<QuotaLimits>): void {
    Object.assign(this.limits, limits);
  }

  flavor(nameOrId: string): EmulatedFlavor | undefined {
    return this.flavors.find((f) => f.name === nameOrId || f.id === nameOrId);
  }

  usage() {
    const h = this.holdings();
    const sizes = h.servers.map((s) => this.flavor(s));
    // every project has its "default" security group, with two ingress and two egress rules
    const groups = [4, ...h.securityGroups];
    return {
      instances: h.servers.length,
      cores: sizes.reduce((n, f) => n + (f?.vcpus ?? 0), 0),
      ram: sizes.reduce((n, f) => n + (f?.ram ?? 0), 0),
      floatingip: h.floatingIps,
      network: 0,
      port: h.servers.length,
      security_group: groups.length,
      security_group_rule: groups.reduce((n, r) => n + r, 0),
      volumes: h.volumes.length,
      gigabytes: h.volumes.reduce((n, g) => n + g, 0),
    };
  }

  /**
   * Nova's check when a server is created: the refusal Heat reports as the resource's failure, e.g.
   * "Quota exceeded for cores: Requested 2, but already used 20 of 20 cores" (nova.exception.TooManyInstances,
   * answered as HTTP 403 by POST /servers). Undefined when the server fits.
   */
  novaRefusal(flavorName: string): string | undefined {
    const flavor = this.flavor(flavorName);
    const used = this.usage();
    const asks: Array<[keyof QuotaLimits, number]> = [['instances', 1], ['cores', flavor?.vcpus ?? 0], ['ram', flavor?.ram ?? 0]];
    const over = asks.filter(([r, n]) => this.limits[r] >= 0 && used[r] + n > this.limits[r]);
    if (over.length === 0) return undefined;
    const names = over.map(([r]) => r).join(', ');
    const requested = over.map(([, n]) => n).join(', ');
    const already = over.map(([r]) => used[r]).join(', ');
    const allowed = over.map(([r]) => this.limits[r]).join(', ');
    return `Quota exceeded for ${names}: Requested ${requested}, but already used ${already} of ${allowed} ${names}`;
  }

  /** GET /compute/v2.1/limits (microversion 2.1: the network figures are still in it). */
  novaLimits(): Reply {
    const u = this.usage();
    const l = this.limits;
    return {
      status: 200,
      body: {
        limits: {
          rate: [],
          absolute: {
            maxServerMeta: 128, maxPersonality: 5, maxPersonalitySize: 10240, maxImageMeta: 128, maxTotalKeypairs: 100,
            maxServerGroups: 10, maxServerGroupMembers: 10, totalServerGroupsUsed: 0,
            maxTotalInstances: l.instances, totalInstancesUsed: u.instances,
            maxTotalCores: l.cores, totalCoresUsed: u.cores,
            maxTotalRAMSize: l.ram, totalRAMUsed: u.ram,
            maxSecurityGroups: l.security_group, totalSecurityGroupsUsed: u.security_group,
            maxSecurityGroupRules: l.security_group_rule,
            maxTotalFloatingIps: l.floatingip, totalFloatingIpsUsed: u.floatingip,
          },
        },
      },
    };
  }

  /** GET /compute/v2.1/flavors/detail */
  novaFlavors(): Reply {
    return {
      status: 200,
      body: {
        flavors: this.flavors.map((f) => ({
          id: f.id, name: f.name, vcpus: f.vcpus, ram: f.ram, disk: f.disk, swap: '', 'OS-FLV-EXT-DATA:ephemeral': 0,
          'OS-FLV-DISABLED:disabled': false, rxtx_factor: 1, 'os-flavor-access:is_public': true, description: null, links: [],
        })),
      },
    };
  }

  /** GET /network/v2.0/quotas/{project}/details.json */
  neutronDetails(): Reply {
    const u = this.usage();
    const l = this.limits;
    const row = (limit: number, used: number) => ({ limit, used, reserved: 0 });
    return {
      status: 200,
      body: {
        quota: {
          floatingip: row(l.floatingip, u.floatingip), network: row(l.network, u.network), port: row(l.port, u.port),
          rbac_policy: row(10, 0), router: row(1, 0), subnet: row(3, 0), subnetpool: row(-1, 0),
          security_group: row(l.security_group, u.security_group), security_group_rule: row(l.security_group_rule, u.security_group_rule),
        },
      },
    };
  }

  /** GET /volume/v3/{project}/os-quota-sets/{project}?usage=true */
  cinderQuotaSet(projectId: string): Reply {
    const u = this.usage();
    const l = this.limits;
    const row = (limit: number, inUse: number) => ({ limit, in_use: inUse, reserved: 0, allocated: 0 });
    return {
      status: 200,
      body: {
        quota_set: {
          id: projectId, volumes: row(l.volumes, u.volumes), gigabytes: row(l.gigabytes, u.gigabytes), snapshots: row(10, 0),
          backups: row(10, 0), backup_gigabytes: row(1000, 0), per_volume_gigabytes: row(-1, 0), groups: row(10, 0),
        },
      },
    };
  }
}
