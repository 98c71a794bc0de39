import { describe, expect, it } from 'vitest';
import {
  decideNetworkEncryption, ipsecProbeCommand, networkEncryptionMismatch, overlayNetworkCreateCommand, parseIpsecProbe, parseNetworkFacts,
} from '../../../src/plan/bootstrap.js';
import { shellLine } from '../../../src/plan/shell.js';

const nodes = (...support: ('yes' | 'no' | 'unknown')[]) => support.map((ipsec, i) => ({ node: `node-${i + 1}`, ipsec }));

describe('app network encryption', () => {
  it('creates the overlay with --opt encrypted when asked', () => {
    expect(shellLine(overlayNetworkCreateCommand('crawler', { encrypted: true })))
      .toBe('docker network create --driver overlay --attachable --opt encrypted --label depl.app=crawler crawler-net');
  });

  it('OpenStack plan: nodes with ESP (Ubuntu VMs) get an encrypted network, by default and when required', () => {
    expect(decideNetworkEncryption('auto', nodes('yes', 'yes', 'yes'))).toEqual({ encrypted: true });
    expect(decideNetworkEncryption(true, nodes('yes', 'yes', 'yes'))).toEqual({ encrypted: true });
  });

  it('auto on nodes without ESP (local nodes on a kernel without CONFIG_INET_ESP): plain, and says so', () => {
    const decision = decideNetworkEncryption('auto', nodes('no', 'no'));
    expect(decision).toMatchObject({ encrypted: false, note: expect.stringContaining('NOT encrypted: no IPsec ESP support in the kernel of node-1, node-2') });
  });

  it('one node without ESP is enough to leave it plain; required encryption is refused there', () => {
    expect(decideNetworkEncryption('auto', nodes('yes', 'no'))).toMatchObject({ encrypted: false });
    expect(decideNetworkEncryption(true, nodes('yes', 'no'))).toEqual({ refuse: expect.stringContaining('node-2 has no IPsec ESP support') });
    expect(decideNetworkEncryption(false, nodes('yes', 'yes'))).toMatchObject({ encrypted: false });
  });

  it('reads the probe and the network facts', () => {
    expect(shellLine(ipsecProbeCommand())).toContain("proto esp");
    expect(parseIpsecProbe('ipsec=yes\n')).toBe('yes');
    expect(parseIpsecProbe('ipsec=no\n')).toBe('no');
    expect(parseIpsecProbe('garbage')).toBe('unknown');
    expect(parseNetworkFacts('overlay true com.docker.network.driver.overlay.vxlanid_list\n')).toEqual({ driver: 'overlay', attachable: true, encrypted: false });
    expect(parseNetworkFacts('overlay true com.docker.network.driver.overlay.vxlanid_list encrypted\n')).toEqual({ driver: 'overlay', attachable: true, encrypted: true });
    expect(networkEncryptionMismatch('crawler-net', { driver: 'overlay', attachable: true, encrypted: false }, true)).toMatch(/exists unencrypted/);
    expect(networkEncryptionMismatch('crawler-net', { driver: 'overlay', attachable: true, encrypted: true }, true)).toBeNull();
  });
});
