import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { ensureBaseImages } from '../../src/apply/base-images.js';
import { engineAtSocket } from '../../src/apply/docker.js';
import { silentLogger, type Logger } from '../../src/util/log.js';

/**
 * PostgreSQL for tests, where images cannot be pulled: Debian's postgresql-15 installed on depl's offline
 * base image, with an entrypoint that keeps the official image's contract (POSTGRES_USER, POSTGRES_PASSWORD
 * or POSTGRES_PASSWORD_FILE, PGDATA initialised on first start with POSTGRES_DB (default: the user) made in it,
 * password logins from the network), so a Compose file written for `postgres:16` runs on it unchanged (a
 * `postgres://shop@db/shop` URL finds its database). Built once per machine on this Docker Engine
 * (the tag carries the recipe's hash) and loaded into a node's engine with `docker save | docker load`.
 */
const ENTRYPOINT = `#!/bin/sh
set -e
export PGDATA="\${PGDATA:-/var/lib/postgresql/data}"
if [ -n "$POSTGRES_PASSWORD_FILE" ]; then POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"; fi
if [ -z "$POSTGRES_PASSWORD" ]; then echo "postgres: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" >&2; exit 1; fi
user="\${POSTGRES_USER:-postgres}"
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  umask 077
  printf '%s' "$POSTGRES_PASSWORD" > /run/postgresql/pw && chown postgres /run/postgresql/pw
  su postgres -s /bin/sh -c "initdb -D '$PGDATA' -U '$user' --pwfile=/run/postgresql/pw --auth=scram-sha-256" >/dev/null
  rm -f /run/postgresql/pw
  db="\${POSTGRES_DB:-$user}"
  if [ "$db" != postgres ]; then
    printf 'CREATE DATABASE "%s" OWNER "%s"\\n' "$db" "$user" | su postgres -s /bin/sh -c "postgres --single -D '$PGDATA' postgres" >/dev/null
  fi
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
exec su postgres -s /bin/sh -c "exec postgres -D '$PGDATA' -c listen_addresses='*'"
`;

const DOCKERFILE = (base: string) => `FROM ${base}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \\
 && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY entrypoint.sh /usr/local/bin/postgres-entrypoint
RUN chmod 755 /usr/local/bin/postgres-entrypoint
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
CMD []
`;

export async function buildPostgresImage(log: Logger = silentLogger): Promise<string> {
  const base = (await ensureBaseImages(engineAtSocket(), log)).redis;
  const tag = `depl-test/postgres:${createHash('sha256').update(DOCKERFILE(base) + ENTRYPOINT).digest('hex').slice(0, 10)}`;
  if ((await execa('docker', ['image', 'inspect', tag], { reject: false })).exitCode === 0) return tag;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-pg-'));
  try {
    await writeFile(path.join(dir, 'Dockerfile'), DOCKERFILE(base));
    await writeFile(path.join(dir, 'entrypoint.sh'), ENTRYPOINT);
    await execa('docker', ['build', '-q', '-t', tag, dir]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return tag;
}

/** Loads an image of this machine's engine into a node container's own engine. */
export async function loadIntoNode(image: string, nodeContainer: string): Promise<void> {
  await execa('sh', ['-c', 'docker save "$1" | docker exec -i "$2" docker load -q', 'sh', image, nodeContainer]);
}
