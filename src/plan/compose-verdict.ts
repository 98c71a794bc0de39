import { deplName, type ComposeImport } from './compose-import.js';

/** What a stateful service's verdict says about its volume: what two versions at once mean for it (README: Stateful web apps). */
const STATEFUL = (volume: string) => `one task with its volume ${volume.split(':')[0]} pinned to the manager, kept across versions; ` +
  'a new version takes the volume over stop-first (the running version stops, then the new one starts on the same data), ' +
  'so requests fail from that stop until the new version passes its health check and goes live: no zero downtime, and no two versions at once';

/**
 * What `depl init` says last about each compose service: it will run as under compose, or what differs and why.
 * Built from the translation itself (where the service went) and the notes made about it, so the verdict cannot
 * claim more than the translation did.
 */
export function composeVerdicts(composeNames: readonly string[], imported: Pick<ComposeImport, 'services' | 'accessories' | 'defaultHealth'>, notes: readonly string[]): string[] {
  return composeNames.map((composeName) => {
    const prefix = `services.${composeName}`;
    const own = notes
      .filter((line) => line.startsWith(`${prefix}.`) || line.startsWith(`${prefix}:`))
      .map((line) => line.slice(prefix.length).replace(/^[.:]\s*/, ''));
    const name = deplName(composeName);
    const service = name === null ? undefined : imported.services[name];
    const accessory = name === null ? undefined : imported.accessories[name];
    if (service === undefined && accessory === undefined) {
      return `${composeName}: not deployed: ${own.join('; ') || 'depl could not translate it'}`;
    }
    const role = service !== undefined
      ? `service ${name}${service.http ? ', reached through the edge at <version>.<domain> and the live domain' : ''}${service.volume !== undefined ? `, ${STATEFUL(service.volume)}` : ''}`
      : `accessory ${name}, one task pinned with its volume ${accessory!.volume?.split(':')[0] ?? ''}, updated stop-first`;
    const differences = [...own];
    if (service !== undefined && imported.defaultHealth.includes(name!)) {
      differences.push('the edge\'s health gate is GET / answering 200 (compose had no HTTP healthcheck); set health: in depl.yaml if / does not answer 200');
    }
    const aliases = (service ?? accessory)!.aliases ?? [];
    if (name !== composeName) {
      differences.push(`named ${name} (depl names are lower-case DNS labels); other services reach it as ${name}${aliases.includes(composeName) ? ` and, as under compose, as ${composeName}` : ''}`);
    }
    return differences.length === 0
      ? `${composeName}: runs as under compose (${role})`
      : `${composeName}: runs as ${role}, with differences: ${differences.join('; ')}`;
  });
}
