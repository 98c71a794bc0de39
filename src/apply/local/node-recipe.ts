import { createHash } from 'node:crypto';

/**
 * What goes into the local node image. Changing anything here changes the recipe hash, so the next
 * node-up builds a new image instead of reusing a stale cache.
 */
export const NODE_PACKAGES = [
  'docker.io', 'openssh-server', 'iproute2', 'iptables', 'procps', 'curl', 'ca-certificates', 'tini',
] as const;

export const NODE_SUITE = 'bookworm';

export const NODE_INIT_PATH = '/usr/local/sbin/depl-node-init';

/**
 * The node's "boot", run by tini as PID 1's child. --privileged is refused on these machines, so the
 * container gets explicit capabilities and this script makes /sys and the cgroup hierarchies writable,
 * which dockerd needs to run containers of its own.
 */
export const NODE_INIT_SCRIPT = `#!/bin/sh
set -u
mount -o remount,rw /sys 2>/dev/null || true
# Docker bind-mounts each cgroup v1 hierarchy read-only: only a bind remount makes them writable
for fs in /sys/fs/cgroup /sys/fs/cgroup/*; do
  [ -d "$fs" ] || continue
  mount -o remount,bind,rw "$fs" 2>/dev/null || mount -o remount,rw "$fs" 2>/dev/null || true
done
# cgroup v2 (most laptops): move ourselves into a child group so dockerd may enable controllers
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  mkdir -p /sys/fs/cgroup/init
  xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true
  sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
fi

# The operator's public key comes from the container's environment, never from the cached image.
mkdir -p /root/.ssh && chmod 700 /root/.ssh
if [ -n "\${DEPL_AUTHORIZED_KEY:-}" ]; then
  printf '%s\\n' "$DEPL_AUTHORIZED_KEY" > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi
# Each node makes its own host keys on first boot (a recreated node is a new machine). No RSA key: it
# costs about a second of CPU per node, which adds up when several nodes boot at once on a laptop.
for type in ed25519 ecdsa; do
  [ -f /etc/ssh/ssh_host_\${type}_key ] || ssh-keygen -q -t "$type" -N '' -f /etc/ssh/ssh_host_\${type}_key
done

mkdir -p /run/sshd /var/log
/usr/sbin/sshd -E /var/log/sshd.log -h /etc/ssh/ssh_host_ed25519_key -h /etc/ssh/ssh_host_ecdsa_key
dockerd --pidfile /run/docker.pid >>/var/log/dockerd.log 2>&1 &
DOCKERD=$!

stop() {
  kill -TERM "$DOCKERD" 2>/dev/null
  wait "$DOCKERD" 2>/dev/null
  exit 0
}
trap stop TERM INT
while kill -0 "$DOCKERD" 2>/dev/null; do
  sleep 1 &
  wait $!
done
# dockerd died: keep the node up (sshd still answers) so the operator can read /var/log/dockerd.log
while :; do sleep 3600 & wait $!; done
`;

/** Restarting an inner dockerd takes ~22 s without a short shutdown timeout. */
export const NODE_DAEMON_JSON = JSON.stringify({ 'shutdown-timeout': 3 }, null, 2) + '\n';

export function nodeRecipeHash(): string {
  return createHash('sha256')
    .update(JSON.stringify({ v: 1, NODE_SUITE, NODE_PACKAGES, NODE_INIT_SCRIPT, NODE_DAEMON_JSON }))
    .digest('hex')
    .slice(0, 12);
}

export function nodeImageTag(): string {
  return `depl-node:${nodeRecipeHash()}`;
}
