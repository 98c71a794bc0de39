import { readFile } from 'node:fs/promises';

/** The mirror this machine's apt uses, so debootstrap goes where apt goes; undefined means debootstrap's default. */
export async function hostDebianMirror(): Promise<string | undefined> {
  const sources = [
    await readFile('/etc/apt/sources.list.d/debian.sources', 'utf8').catch(() => ''),
    await readFile('/etc/apt/sources.list', 'utf8').catch(() => ''),
  ].join('\n');
  const deb822 = /^URIs:\s*(\S+\/debian)\/?\s*$/m.exec(sources);
  const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s+/m.exec(sources);
  return deb822?.[1] ?? oneLine?.[1];
}
