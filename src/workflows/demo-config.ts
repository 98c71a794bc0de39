import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateMissingSecrets } from '../apply/secrets-store.js';
import { parseDocument } from 'yaml';
import { parseConfig } from '../config/load.js';
import { exampleContext, renderInitConfig } from '../plan/init-config.js';
import { packagePath, packageRoot } from '../util/paths.js';

const DEFAULT_SUBNET = '192.168.77.0/24';

/**
 * The demo's depl.yaml: what `depl init` writes, plus permission for the crawler to fetch the built-in demo
 * site, which lives on the local cluster's bridge (a private network the crawler refuses by default).
 * An existing file is kept: a second run reuses it, and a user's edits survive.
 */
export async function ensureDemoConfig(file: string): Promise<{ created: boolean; allowed: string | null }> {
  const existing = await readFile(file, 'utf8').catch(() => null);
  const text = existing ?? renderInitConfig(await readFile(packagePath('templates', 'depl.example.yaml'), 'utf8'), {
    app: 'crawler', domain: 'crawler.localhost', provider: 'local', exampleContext: exampleContext(path.dirname(file), packageRoot, path.relative),
  });
  const document = parseDocument(text);
  // the demo site is served on the cluster bridge's gateway, inside the local provider's subnet
  const allowNetwork = String(document.getIn(['provider', 'subnet']) ?? DEFAULT_SUBNET);
  const networks = document.getIn(['config', 'allow', 'networks']) as { items?: Array<{ value?: unknown }> } | undefined;
  const already = networks?.items?.some((item) => (item.value ?? item) === allowNetwork) ?? false;
  if (!already) {
    document.setIn(['config', 'allow', 'networks'], [...(networks?.items?.map((i) => String(i.value ?? i)) ?? []), allowNetwork]);
  }
  const out = document.toString();
  const config = parseConfig(out, file);
  if (existing === null || !already) await writeFile(file, out, { mode: 0o600 });
  await generateMissingSecrets(path.dirname(file), config.secrets, new Date());
  return { created: existing === null, allowed: already ? null : allowNetwork };
}
