import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { renderInitConfig } from '../../src/plan/init-config.js';
import { packagePath } from '../../src/util/paths.js';
import { repoRoot } from './cli.js';

/**
 * The default depl.yaml shape (what `depl init` writes), deploying the real crawler from this repository with
 * templates/crawler.Dockerfile: the Dockerfile path is relative, so it is found among depl's own templates.
 * Returns the top-level keys to merge over a test cluster's depl.yaml; the secrets it declares are made as
 * `depl init` makes them, with generateMissingSecrets.
 */
export async function crawlerDeployment(app: string, config: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const text = renderInitConfig(await readFile(packagePath('templates', 'depl.example.yaml'), 'utf8'), { app, domain: `${app}.localhost`, provider: 'local' });
  const example = parse(text) as Record<string, Record<string, Record<string, unknown>>>;
  const services = example.services!;
  services.api!.build = { ...(services.api!.build as object), context: repoRoot };
  return { images: example.images, services, accessories: example.accessories, secrets: example.secrets, config: { ...example.config, ...config } };
}
