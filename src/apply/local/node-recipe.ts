import { createHash } from 'node:crypto';

/**
 * What goes into a local node image. Changing anything in a recipe changes its hash, so the next node-up
 * builds a new image instead of reusing a stale cache. Two kinds:
 * - `docker`: root login, Docker Engine installed and started at boot (quick clusters, the demo);
 * - `cloud`: like a fresh Ubuntu cloud image on Nectar: login user `ubuntu` with passwordless sudo, no root
 *   login, no Docker (node-up installs it through sudo).
 */
export type NodeImageKind = 'docker' | 'cloud';

/** The login user of the `cloud` image, as on Nectar's Ubuntu images. */
export const CLOUD_LOGIN_USER = 'ubuntu';

export interface NodeRecipe {
  kind: NodeImageKind;
  /** Image repository; the tag is the recipe hash. */
  repository: string;
  /** Cached rootfs tarball name: `<tarballPrefix>-<hash>.tar.gz`. */
  tarballPrefix: string;
  suite: string;
  packages: readonly string[];
  initScript: string;
  /** Files written into the rootfs after debootstrap (path relative to /). */
  files: readonly { path: string; content: string; mode: number }[];
  /** Commands run with chroot in the rootfs after the files are written. */
  chrootCommands: readonly (readonly string[])[];
  /** Debian's /etc/init.d/docker raises the open-files limit, which fails without CAP_SYS_RESOURCE. */
  tolerateDockerUlimit: boolean;
  hash: string;
}

/**
 * What Ansible needs on a managed host, as Nectar's Ubuntu images carry it: python3, python3-apt (the apt module,
 * and any --check run), python3-docker (the community.docker swarm modules).
 */
export const ANSIBLE_MANAGED_PACKAGES = ['python3', 'python3-apt', 'python3-docker'] as const;

/** sudo even with root login: `ansible --become`, as the seed's ad-hoc commands run it, goes through sudo. */
export const NODE_PACKAGES = [
  'docker.io', 'openssh-server', 'iproute2', 'iptables', 'procps', 'curl', 'ca-certificates', 'tini', 'sudo', ...ANSIBLE_MANAGED_PACKAGES,
] as const;

export const CLOUD_NODE_PACKAGES = ['openssh-server', 'sudo', 'iproute2', 'procps', 'curl', 'ca-certificates', 'tini', ...ANSIBLE_MANAGED_PACKAGES] as const;

export const NODE_SUITE = 'bookworm';

export const NODE_INIT_PATH = '/usr/local/sbin/depl-node-init';

/**
 * --privileged is refused on these machines, so the container gets explicit capabilities and the node's
 * init makes /sys and the cgroup hierarchies writable, which dockerd needs to run containers of its own.
 */
const MOUNTS = `set -u
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
`;

const HOST_KEYS_AND_SSHD = `# Each node makes its own host keys on first boot (a recreated node is a new machine). No RSA key: it
# costs about a second of CPU per node, which adds up when several nodes boot at once on a laptop.
for type in ed25519 ecdsa; do
  [ -f /etc/ssh/ssh_host_\${type}_key ] || ssh-keygen -q -t "$type" -N '' -f /etc/ssh/ssh_host_\${type}_key
done

mkdir -p /run/sshd /var/log
/usr/sbin/sshd -E /var/log/sshd.log -h /etc/ssh/ssh_host_ed25519_key -h /etc/ssh/ssh_host_ecdsa_key
`;

/**
 * Where Debian's /etc/init.d/docker keeps the pid it started, so that `service docker status` (what Ansible's
 * service module asks on a host without systemd) sees the dockerd the node's boot started.
 */
const RECORD_FOR_INIT_SCRIPT = (pid: string) => `echo "${pid}" > /run/docker-ssd.pid`;

/** The `docker` node's "boot", run by tini as PID 1's child. */
export const NODE_INIT_SCRIPT = `#!/bin/sh
${MOUNTS}
# The operator's public key comes from the container's environment, never from the cached image.
mkdir -p /root/.ssh && chmod 700 /root/.ssh
if [ -n "\${DEPL_AUTHORIZED_KEY:-}" ]; then
  printf '%s\\n' "$DEPL_AUTHORIZED_KEY" > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi
${HOST_KEYS_AND_SSHD}dockerd --pidfile /run/docker.pid >>/var/log/dockerd.log 2>&1 &
DOCKERD=$!
${RECORD_FOR_INIT_SCRIPT('$DOCKERD')}

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

/**
 * The `cloud` node's "boot": what cloud-init and systemd do on a Nectar VM, in the parts depl meets. The
 * key goes to the login user's authorized_keys; Docker, once node-up installed it, starts at boot as its
 * systemd unit would, and stops with the node.
 */
export const CLOUD_INIT_SCRIPT = `#!/bin/sh
${MOUNTS}
home=/home/${CLOUD_LOGIN_USER}
install -d -m 700 -o ${CLOUD_LOGIN_USER} -g ${CLOUD_LOGIN_USER} "$home/.ssh"
if [ -n "\${DEPL_AUTHORIZED_KEY:-}" ]; then
  printf '%s\\n' "$DEPL_AUTHORIZED_KEY" > "$home/.ssh/authorized_keys"
  chown ${CLOUD_LOGIN_USER}:${CLOUD_LOGIN_USER} "$home/.ssh/authorized_keys"
  chmod 600 "$home/.ssh/authorized_keys"
fi
${HOST_KEYS_AND_SSHD}if command -v dockerd >/dev/null 2>&1; then
  setsid dockerd --pidfile /run/docker.pid >>/var/log/dockerd.log 2>&1 </dev/null &
  ${RECORD_FOR_INIT_SCRIPT('$!')}
fi

stop() {
  pid=$(cat /run/docker.pid 2>/dev/null || true)
  if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
    i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 80 ]; do sleep 0.1; i=$((i + 1)); done
  fi
  exit 0
}
trap stop TERM INT
while :; do sleep 3600 & wait $!; done
`;

/** Restarting an inner dockerd takes ~22 s without a short shutdown timeout. */
export const NODE_DAEMON_JSON = JSON.stringify({ 'shutdown-timeout': 3 }, null, 2) + '\n';

/** What cloud-init writes for the default user of Ubuntu's cloud images. */
export const CLOUD_SUDOERS = `${CLOUD_LOGIN_USER} ALL=(ALL) NOPASSWD:ALL\n`;
export const CLOUD_SSHD_CONFIG = 'PermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n';

/**
 * Debian's /etc/init.d/docker raises the open-files and process limits under `set -e`, which fails in a node
 * without CAP_SYS_RESOURCE; the `docker` image patches the script when it is built, the `cloud` one (where
 * docker.io comes later, from node-up or Ansible) after each dpkg run, so `service docker start` works on both.
 */
export const TOLERATE_DOCKER_ULIMIT_SCRIPT = `#!/bin/sh
initd=/etc/init.d/docker
[ -f "$initd" ] || exit 0
sed -i -E 's/^([[:space:]]*ulimit -[npu] [0-9a-z]+)[[:space:]]*$/\\1 || true/' "$initd"
`;
export const TOLERATE_DOCKER_ULIMIT_PATH = '/usr/local/sbin/depl-docker-initd-ulimit';
export const CLOUD_APT_HOOK = `DPkg::Post-Invoke { "${TOLERATE_DOCKER_ULIMIT_PATH}"; };\n`;

function dockerRecipeHash(): string {
  // the same inputs as before recipes had kinds, so existing caches stay valid
  return createHash('sha256')
    .update(JSON.stringify({ v: 1, NODE_SUITE, NODE_PACKAGES, NODE_INIT_SCRIPT, NODE_DAEMON_JSON }))
    .digest('hex')
    .slice(0, 12);
}

export const DOCKER_NODE_RECIPE: NodeRecipe = {
  kind: 'docker',
  repository: 'depl-node',
  tarballPrefix: 'node-rootfs',
  suite: NODE_SUITE,
  packages: NODE_PACKAGES,
  initScript: NODE_INIT_SCRIPT,
  files: [{ path: 'etc/docker/daemon.json', content: NODE_DAEMON_JSON, mode: 0o644 }],
  chrootCommands: [],
  tolerateDockerUlimit: true,
  hash: dockerRecipeHash(),
};

const cloudParts = {
  suite: NODE_SUITE,
  packages: CLOUD_NODE_PACKAGES,
  initScript: CLOUD_INIT_SCRIPT,
  files: [
    { path: 'etc/sudoers.d/90-cloud-init-users', content: CLOUD_SUDOERS, mode: 0o440 },
    { path: 'etc/ssh/sshd_config.d/60-cloudimg-settings.conf', content: CLOUD_SSHD_CONFIG, mode: 0o644 },
    { path: TOLERATE_DOCKER_ULIMIT_PATH.slice(1), content: TOLERATE_DOCKER_ULIMIT_SCRIPT, mode: 0o755 },
    { path: 'etc/apt/apt.conf.d/90-depl-docker-ulimit', content: CLOUD_APT_HOOK, mode: 0o644 },
  ],
  chrootCommands: [['useradd', '--create-home', '--shell', '/bin/bash', '--uid', '1000', '--user-group', CLOUD_LOGIN_USER]],
  tolerateDockerUlimit: false,
};

export const CLOUD_NODE_RECIPE: NodeRecipe = {
  kind: 'cloud',
  repository: 'depl-node-cloud',
  tarballPrefix: 'node-cloud-rootfs',
  ...cloudParts,
  hash: createHash('sha256').update(JSON.stringify({ v: 1, ...cloudParts })).digest('hex').slice(0, 12),
};

export function nodeRecipe(kind: NodeImageKind): NodeRecipe {
  return kind === 'cloud' ? CLOUD_NODE_RECIPE : DOCKER_NODE_RECIPE;
}

export function nodeRecipeHash(recipe: NodeRecipe = DOCKER_NODE_RECIPE): string {
  return recipe.hash;
}

export function nodeImageTag(recipe: NodeRecipe = DOCKER_NODE_RECIPE): string {
  return `${recipe.repository}:${recipe.hash}`;
}
