import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { baseRecipeHash, EDGE_PACKAGES } from '../../../src/apply/base-images.js';
import { packagePath } from '../../../src/util/paths.js';

describe('the edge image', () => {
  it('is made of the same Debian packages offline (debootstrap) and where nodes can pull (templates/edge.Dockerfile)', async () => {
    const dockerfile = await readFile(packagePath('templates', 'edge.Dockerfile'), 'utf8');
    const installed = /apt-get install -y --no-install-recommends ([^\\\n]+)/.exec(dockerfile)?.[1]?.trim().split(/\s+/);
    expect(installed).toEqual(EDGE_PACKAGES);
    expect(EDGE_PACKAGES).toContain('libnginx-mod-http-lua');
    expect(baseRecipeHash()).toMatch(/^[0-9a-f]{10}$/);
  });
});
