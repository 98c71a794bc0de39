import { describe, expect, it } from 'vitest';
import { loadImageCommand, nodeImageCheckCommand, parseNodeImageState, planDistribution } from '../../../src/plan/distribute.js';
import { shellLine } from '../../../src/plan/shell.js';

const image = 'crawler/api:20261122-130512';
const id = 'sha256:4f1c0ffee';

describe('image distribution as data', () => {
  it('with a registry: the manager pushes, no node is asked anything', () => {
    expect(planDistribution({ image: 'registry.example:5000/crawler/api:v1', id, nodes: ['node-1', 'node-2'], manager: 'node-1', registry: 'registry.example:5000' }))
      .toEqual({ mode: 'registry', image: 'registry.example:5000/crawler/api:v1' });
  });

  it('without one: every node but the manager is checked, and those that lack it load the saved image', () => {
    const plan = planDistribution({ image, id, nodes: ['node-1', 'node-2', 'node-3'], manager: 'node-1' });
    expect(plan.mode).toBe('ssh');
    if (plan.mode !== 'ssh') return;
    expect(plan.nodes.map((n) => n.name)).toEqual(['node-2', 'node-3']);
    expect(plan.nodes[0]!.check).toEqual(nodeImageCheckCommand(image, id));
    expect(plan.load).toEqual(['docker', 'load', '--quiet']);
    expect(planDistribution({ image, id, nodes: ['node-1'], manager: 'node-1' })).toMatchObject({ mode: 'ssh', nodes: [] });
  });

  it('checks a node in one command: the tag already on the id, else the id present and tagged, else missing', () => {
    const check = nodeImageCheckCommand(image, id);
    expect(check.slice(0, 2)).toEqual(['sh', '-c']);
    expect(check.slice(3)).toEqual(['depl-image', image, id]);
    expect(check[2]).toBe([
      'have=$(docker image inspect --format "{{.Id}}" "$1" 2>/dev/null || true)',
      'if [ "$have" = "$2" ]; then echo skipped',
      'elif docker image inspect --format "{{.Id}}" "$2" >/dev/null 2>&1; then docker tag "$2" "$1" && echo tagged',
      'else echo missing; fi',
    ].join('\n'));
    // the image and id are arguments, never spliced into the script: quoted once for the remote shell
    expect(shellLine(check).endsWith("' depl-image crawler/api:20261122-130512 sha256:4f1c0ffee")).toBe(true);
    expect(loadImageCommand()).toEqual(['docker', 'load', '--quiet']);
  });

  it('reads the answer, and nothing else', () => {
    expect(parseNodeImageState('skipped\n')).toBe('skipped');
    expect(parseNodeImageState('tagged\n')).toBe('tagged');
    expect(parseNodeImageState('missing')).toBe('missing');
    expect(parseNodeImageState('')).toBeNull();
    expect(parseNodeImageState('Error response from daemon: ...\n')).toBeNull();
  });
});
