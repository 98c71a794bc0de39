/**
 * Every key of the Compose Specification's services, secrets, configs and volumes sections, and what depl does
 * with it: translated (by src/plan/compose-import.ts), or the reason it is not. One table, so a key the
 * specification adds shows up as unknown rather than silently dropped, and the unit test walks it whole.
 */

/** Service keys compose-import.ts translates (some only in part: it notes what it leaves out). */
export const TRANSLATED_SERVICE_KEYS = [
  'build', 'image', 'command', 'entrypoint', 'environment', 'env_file', 'ports', 'expose', 'healthcheck', 'deploy',
  'volumes', 'stop_grace_period', 'stop_signal', 'user', 'working_dir', 'secrets', 'configs', 'depends_on',
  'cpus', 'mem_limit', 'mem_reservation', 'scale', 'restart', 'networks', 'container_name', 'hostname', 'links',
] as const;

const networking = 'depl puts every service and accessory on the app\'s one overlay network; they reach each other by name';
const hostAccess = 'gives the container a part of the node itself, which depl does not hand to an app deployed across machines';
const notInSwarm = 'swarm services cannot set it (docker service create has no such option)';

/** Service keys depl does not translate, with the reason. */
export const SERVICE_KEY_REASONS: Record<string, string> = {
  annotations: 'swarm services carry labels, not OCI annotations',
  attach: 'depl collects logs with docker service logs; nothing attaches',
  blkio_config: notInSwarm,
  cpu_count: `Windows only; use cpus (a swarm limit)`,
  cpu_percent: `Windows only; use cpus (a swarm limit)`,
  cpu_shares: `${notInSwarm}; use cpus or deploy.resources`,
  cpu_period: `${notInSwarm}; use cpus`,
  cpu_quota: `${notInSwarm}; use cpus`,
  cpu_rt_runtime: notInSwarm,
  cpu_rt_period: notInSwarm,
  cpuset: notInSwarm,
  cap_add: `${hostAccess}`,
  cap_drop: 'depl keeps Docker\'s default capabilities',
  cgroup: notInSwarm,
  cgroup_parent: notInSwarm,
  credential_spec: 'Windows only',
  develop: 'compose watch is for a developer\'s machine; depl deploys built images',
  device_cgroup_rules: hostAccess,
  devices: hostAccess,
  dns: 'services resolve through Docker\'s DNS on the overlay network (the edge depends on it)',
  dns_opt: 'services resolve through Docker\'s DNS on the overlay network',
  dns_search: 'services resolve through Docker\'s DNS on the overlay network',
  domainname: 'services reach each other by their service or accessory name',
  driver_opts: 'depl chooses the network and its driver',
  extends: 'depl reads one compose file; merge the extended service into it first (docker compose config)',
  external_links: networking,
  extra_hosts: 'depl does not write the container\'s /etc/hosts; use DNS names',
  gpus: 'depl places no GPU workloads',
  group_add: notInSwarm,
  init: 'swarm services cannot ask for docker-init; make the image\'s entrypoint reap children (tini)',
  ipc: hostAccess,
  isolation: 'Windows only',
  labels: 'depl labels services itself (depl.app, depl.version, depl.service)',
  label_file: 'depl labels services itself (depl.app, depl.version, depl.service)',
  logging: 'read logs with depl logs (docker service logs on the manager)',
  mac_address: 'swarm assigns addresses on the overlay network',
  mem_swappiness: notInSwarm,
  memswap_limit: notInSwarm,
  models: 'depl deploys no AI models',
  network_mode: networking,
  oom_kill_disable: notInSwarm,
  oom_score_adj: notInSwarm,
  pid: hostAccess,
  pids_limit: 'depl sets no process limit per task',
  platform: 'images are built on and for the manager\'s platform',
  post_start: 'lifecycle hooks are compose\'s own; run setup in the image\'s entrypoint or as depl run',
  pre_stop: 'lifecycle hooks are compose\'s own; handle the stop signal in the service',
  privileged: hostAccess,
  profiles: 'depl deploys every service of the file; remove the ones you do not want',
  provider: 'compose provider services are outside swarm',
  pull_policy: 'depl distributes images to every node itself (or pulls from the registry in depl.yaml)',
  read_only: notInSwarm,
  runtime: 'the nodes run Docker\'s default runtime',
  security_opt: hostAccess,
  shm_size: 'depl mounts no sized /dev/shm; use a tmpfs in the image',
  stdin_open: 'services run without a terminal',
  storage_opt: notInSwarm,
  sysctls: 'depl sets no kernel parameters per task',
  tmpfs: 'depl mounts no tmpfs besides secrets; write to the container\'s own layer or a volume',
  tty: 'services run without a terminal',
  ulimits: 'depl sets no resource limits besides cpus and memory',
  use_api_socket: hostAccess,
  userns_mode: hostAccess,
  uts: hostAccess,
  volumes_from: 'swarm tasks cannot share another container\'s volumes; name the volume instead',
};

/** Keys of a top-level secret: `file` and `environment` are imported, `name` becomes the depl name. */
export const SECRET_KEYS: Record<string, string | true> = {
  file: true,
  environment: true,
  name: true,
  external: 'an external secret exists only where compose ran; depl declares it and generates a value (set yours with depl secrets set NAME)',
  labels: 'depl labels its swarm secrets itself',
  driver: 'swarm holds depl\'s secrets in its own store',
  driver_opts: 'swarm holds depl\'s secrets in its own store',
  template_driver: 'depl mounts the value as it is',
};

/** Keys of a top-level config: `file` is mounted, `name` is ignored (depl names configs after their content). */
export const CONFIG_KEYS: Record<string, string | true> = {
  file: true,
  name: true,
  content: 'inline content: put it in a file in the project and name that file (depl mounts project files)',
  environment: 'a config from the environment of the machine running compose: put it in a file in the project',
  external: 'an external config exists only where compose ran: put its content in a file in the project',
  labels: 'depl labels its swarm configs itself',
  template_driver: 'depl mounts the file as it is',
};

/** Keys of a top-level volume: a named volume is local to the node its accessory is pinned to. */
export const VOLUME_KEYS: Record<string, string | true> = {
  name: 'depl names the volume after the key under volumes:',
  external: 'depl creates the volume on the node its accessory is pinned to; an existing one of that name there is used',
  driver: 'depl uses the local driver on the accessory\'s node',
  driver_opts: 'depl uses the local driver on the accessory\'s node',
  labels: 'depl labels volumes itself (depl.app, depl.accessory)',
};
