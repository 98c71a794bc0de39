#!/usr/bin/env node
/**
 * Removes what one test cluster made on this machine's Docker Engine, by id: its containers (with their
 * anonymous volumes), then its named volumes, then its networks. The job is a JSON file
 * `{ label, socketPath, containers, volumes, networks }`; the outcome is written beside it as
 * `<job>.result.json` (`{ label, seconds, failed }`), and the exit code is 1 when anything is left.
 *
 * Run detached by test/support/cluster.ts after a test file's cases, so that removing a cluster (a few seconds of
 * the engine's work a cluster at load) overlaps the next file instead of holding it back; the integration
 * project's global teardown (test/support/global-setup.ts) waits for every such job before the run ends and
 * fails the run on what one could not remove.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';

const jobFile = process.argv[2];
if (!jobFile) {
  process.stderr.write('usage: remove-docker-objects.mjs <job.json>\n');
  process.exit(2);
}
const job = JSON.parse(await readFile(jobFile, 'utf8'));
const docker = new Docker({ socketPath: job.socketPath });
const started = Date.now();
const failed = [];

const NETWORK_WAIT_MS = 120_000;
const isGone = (error) => error?.statusCode === 404;

/** Removes each at once (the engine does them side by side); a 404 means it is gone already. */
async function removeEach(kind, ids, remove) {
  await Promise.all(ids.map(async (id) => {
    try {
      await remove(id);
    } catch (error) {
      if (!isGone(error)) failed.push(`${kind} ${id}: ${String(error?.message ?? error).trim()}`);
    }
  }));
}

/**
 * A network is removed once nothing is attached: a container a case attached to it (not the cluster's own)
 * may still be on its way out. Waits for that, up to a deadline, then names what is still attached.
 */
async function removeNetwork(id) {
  const deadline = Date.now() + NETWORK_WAIT_MS;
  for (;;) {
    try {
      await docker.getNetwork(id).remove();
      return;
    } catch (error) {
      if (isGone(error) || !/active endpoints/i.test(String(error?.message)) || Date.now() > deadline) throw error;
    }
    const info = await docker.getNetwork(id).inspect().catch(() => undefined);
    if (info === undefined) return;
    await sleep(1_000);
  }
}

await removeEach('container', job.containers, (id) => docker.getContainer(id).remove({ force: true, v: true }));
await removeEach('volume', job.volumes, (name) => docker.getVolume(name).remove({ force: true }));
await removeEach('network', job.networks, removeNetwork);

const result = { label: job.label, seconds: (Date.now() - started) / 1000, failed };
await writeFile(`${jobFile}.tmp`, JSON.stringify(result));
await rename(`${jobFile}.tmp`, `${jobFile}.result.json`);
process.exitCode = failed.length === 0 ? 0 : 1;
