import { Command, InvalidArgumentError, Option } from 'commander';
import type { CommandContext, CommandOutcome, GlobalOptions } from './context.js';
import { helpOutput } from './help-output.js';

/**
 * The whole command surface. Each action imports its command module only when it runs,
 * so `depl --help` loads nothing but commander.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each command module declares its own argument types
export type Runner = (load: () => Promise<{ default: (ctx: CommandContext, ...args: any[]) => Promise<void | CommandOutcome> }>, ...args: unknown[]) => Promise<void>;

const LOCK_WAIT_HELP = 'when another depl run holds the cluster lock, wait up to this long for it (e.g. 5m) instead of failing';

export function buildProgram(run: Runner): Command {
  const program = new Command('depl')
    .description('Provision a Docker Swarm on OpenStack or local nodes, and deploy versioned, zero-downtime releases behind nginx.')
    .option('--config <file>', 'path to depl.yaml (env DEPL_CONFIG)', undefined)
    .option('--json', 'print one JSON document on stdout; logs go to stderr')
    .option('--yes', 'never prompt; fail instead of asking')
    .option('--verbose', 'more detail, and stack traces for internal errors')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ ...helpOutput(), writeErr: (s) => process.stderr.write(s) })
    .exitOverride();

  program.command('init')
    .description('write a commented depl.yaml for the app in this folder: from its compose.yaml, its Dockerfile, or the example crawler')
    .addOption(new Option('--provider <type>', 'where the nodes come from').choices(['local', 'openstack']).default('local'))
    .option('--app <name>', "application name (a DNS label; default: the compose file's name:, else the folder's name, asked on a terminal; the example: crawler)")
    .option('--domain <domain>', "domain the versions are served under (default: <app>.localhost; with --provider openstack, <app>.<the project's zone> from Designate)")
    .option('--from <file>', 'a Compose file or Dockerfile to start from (default: the one in this folder)')
    .addOption(new Option('--example <app>', 'the example app, whatever the folder holds').choices(['crawler']))
    .option('--port <port>', 'with a Dockerfile: the port the service listens on (default: its EXPOSE, or 8000)', positiveInt)
    .option('--health <path>', 'with a Dockerfile: the health path that answers 200 (default: /)')
    .option('--no-tls', 'plain HTTP: write tls: { mode: off } (default with --provider openstack: HTTPS from Let\'s Encrypt, by DNS-01 in the project\'s zone for its domain)')
    .option('--tls-email <address>', "contact address of the ACME account (default: asked on a terminal, else none; Let's Encrypt needs none)")
    .option('--force', 'overwrite an existing file')
    .action((opts) => run(() => import('./commands/init.js'), opts));

  program.command('demo')
    .description('the whole path on the embedded default: local 3-node cluster, build, install, switch live, crawl a demo site')
    .action((opts) => run(() => import('./commands/demo.js'), opts));

  program.command('node-up')
    .description('provision nodes and bootstrap the Docker Swarm; safe to re-run')
    .option('--nodes <n>', 'grow or shrink the cluster to N nodes', positiveInt)
    .option('--plan', "show what would change (on OpenStack: Heat's preview of the create or update) and change nothing")
    .option('--dry-run', "print the provider's plan and the swarm's (init, join, labels, network, drains) as read from the nodes now; change nothing")
    .option('--pool <name=n>', 'size a worker pool (provider.pools) within its count range; repeatable', poolSize, {})
    .action((opts) => run(() => import('./commands/node-up.js'), opts));

  program.command('node-down')
    .description('remove the nodes (or delete the Heat stack), their network and volumes')
    .action((opts) => run(() => import('./commands/node-down.js'), opts));

  program.command('status')
    .description('nodes, live version, canary, installed versions')
    .action((opts) => run(() => import('./commands/status.js'), opts));

  program.command('buildinst')
    .description('build the images, install them as a new version, health-check it at <version>.<domain>')
    .option('--version <id>', 'version label (one DNS label); default: the UTC time')
    .option('--branch <name>', 'per-branch staging deploy: the label is the branch name, or its slug plus a hash (README); a redeploy replaces only that branch\'s own deploy')
    .option('--lock-wait <duration>', LOCK_WAIT_HELP)
    .option('--dry-run', 'print the release state change and the edge diff; build and change nothing')
    .action((opts) => run(() => import('./commands/buildinst.js'), opts));

  program.command('versions')
    .description('installed versions, with live, canary and previous marked')
    .action((opts) => run(() => import('./commands/versions.js'), opts));

  program.command('switch')
    .description('make <version> live on the domain, atomically')
    .argument('<version>', 'an installed version')
    .option('--lock-wait <duration>', LOCK_WAIT_HELP)
    .option('--dry-run', 'print the release state change and the edge diff; change nothing')
    .action((version, opts) => run(() => import('./commands/switch.js'), version, opts));

  program.command('rollback')
    .description('switch back to the previous live version')
    .option('--lock-wait <duration>', LOCK_WAIT_HELP)
    .option('--dry-run', 'print the release state change and the edge diff; change nothing')
    .action((opts) => run(() => import('./commands/rollback.js'), opts));

  program.command('canary')
    .description('send a share of live traffic to <version>')
    .argument('[version]', 'an installed version (not needed with --promote/--abort)')
    .option('--weight <pct>', 'percentage of live traffic, 0..100', percentage)
    .option('--steps <list>', 'automatic analysis: weights to move through, e.g. 10,25,50,100')
    .option('--interval <duration>', 'time at each step, e.g. 1m', '1m')
    .option('--max-error-rate <pct>', 'abort when the canary 5xx rate exceeds this, e.g. 1%', '1%')
    .option('--max-p95 <duration>', 'abort when the canary p95 latency exceeds this, e.g. 500ms', '500ms')
    .option('--promote', 'make the canary fully live')
    .option('--abort', 'send all traffic back to the live version')
    .option('--lock-wait <duration>', LOCK_WAIT_HELP)
    .option('--dry-run', 'print the release state change and the edge diff; change nothing')
    .action((version, opts) => run(() => import('./commands/canary.js'), version, opts));

  program.command('scale')
    .description("set the replicas of the live version's services (or --version's); on the live version they become the app's scale, which later versions keep")
    .argument('<service=replicas...>', 'one or more pairs, e.g. worker=5 api=2')
    .option('--version <id>', 'a version other than the live one (applied, not recorded as the app\'s scale)')
    .option('--lock-wait <duration>', LOCK_WAIT_HELP)
    .option('--dry-run', 'print the release state change and the replicas; change nothing')
    .action((pairs, opts) => run(() => import('./commands/scale.js'), pairs, opts));

  program.command('stats')
    .description('per-version requests, 5xx rate and latency percentiles from the edge logs')
    .option('--since <duration>', 'time window, e.g. 10m', '10m')
    .action((opts) => run(() => import('./commands/stats.js'), opts));

  program.command('prune')
    .description('remove old versions; never the live, canary or previous one')
    .option('--keep <n>', 'versions to keep besides live, canary and previous', positiveInt, 3)
    .option('--branches <list>', 'instead: remove the per-branch deploys of branches not in this list (comma-separated), e.g. from git ls-remote --heads')
    .option('--lock-wait <duration>', LOCK_WAIT_HELP)
    .option('--dry-run', 'print what would be removed, the release state change and the edge diff; change nothing')
    .action((opts) => run(() => import('./commands/prune.js'), opts));

  program.command('logs')
    .description("the tasks' logs across nodes, merged in time order: the live version's, or --version's")
    .argument('[service]', 'one service (default: all of the version)')
    .option('--version <id>', 'a version other than the live one')
    .option('-f, --follow', 'keep printing new lines, including those of tasks that start later')
    .option('--since <duration>', 'only lines from this far back, e.g. 10m')
    .option('--tail <n>', 'only the last N lines', nonNegativeInt)
    .option('--grep <regex>', 'only lines matching this regular expression')
    .option('--raw', "the tasks' text as written, terminal escape sequences included (default: colours and cursor moves removed, other control characters shown escaped)")
    .action((service, opts) => run(() => import('./commands/logs.js'), service, opts));

  program.command('run')
    .description("a one-off job in the swarm with the version's image, config, secrets and network; its output streamed, its exit code returned, the job removed afterwards")
    .argument('<service>', 'the service whose spec the job copies')
    .argument('[command...]', "the command, after -- (e.g. depl run api -- node migrate.js); with --entrypoint, that program's arguments")
    .option('--version <id>', 'a version other than the live one')
    .option('--entrypoint <program>', "replace the image's ENTRYPOINT, as docker run --entrypoint does (e.g. depl run --entrypoint sh api -- -c 'ls')")
    .option('--timeout <duration>', 'stop and remove the job, and fail, when it runs longer than this (default 1h; "none" for no limit)')
    .action((service, command, opts) => run(() => import('./commands/run.js'), service, command, opts));

  program.command('exec')
    .description('run a command in a running task of the service (interactive with a TTY when stdin is one); its exit code returned')
    .argument('<service>', 'the service, one of whose running tasks runs the command')
    .argument('<command...>', 'the command, after -- (e.g. depl exec api -- sh)')
    .option('--version <id>', 'a version other than the live one')
    .action((service, command, opts) => run(() => import('./commands/exec.js'), service, command, opts));

  program.command('backup')
    .description("a consistent snapshot of an accessory's volume (Redis: BGSAVE, online; others: paused while copied) to a file in .depl/backups/")
    .argument('<accessory>', 'an accessory in depl.yaml')
    .option('--output <file>', 'where to write it (default: .depl/backups/<app>-<accessory>-<time>.tar beside depl.yaml; never overwritten)')
    .option('--dry-run', 'print the plan (resume, snapshot or pause, copy); write and change nothing')
    .option('--lock-wait <duration>', LOCK_WAIT_HELP)
    .action((accessory, opts) => run(() => import('./commands/backup.js'), accessory, opts));

  program.command('restore')
    .description("replace an accessory's data with a backup file: checked first, then stop, replace, start, verify")
    .argument('<accessory>', 'an accessory in depl.yaml')
    .argument('<file>', 'a file written by depl backup')
    .option('--force', 'restore even while installed versions use the accessory')
    .option('--dry-run', 'check the file and print the plan (record, stop, copy, replace, start, verify); change nothing')
    .option('--lock-wait <duration>', LOCK_WAIT_HELP)
    .action((accessory, file, opts) => run(() => import('./commands/restore.js'), accessory, file, opts));

  program.command('hibernate')
    .description('back up the accessories and the release state to .depl/backups/, then shelve every instance (OpenStack: no SUs burn) or stop the local node containers; depl wake brings it back')
    .option('--dry-run', 'print the plan (record, keep, back up, shelve or stop, wait); change nothing')
    .option('--lock-wait <duration>', LOCK_WAIT_HELP)
    .action((opts) => run(() => import('./commands/hibernate.js'), opts));

  program.command('wake')
    .description('unshelve every instance (or start the local node containers), wait for the swarm to be whole, restore what is missing, and wait until the live version is healthy again')
    .option('--dry-run', 'print the plan (unshelve or start, wait, restore what is missing, health check); change nothing')
    .option('--lock-wait <duration>', LOCK_WAIT_HELP)
    .action((opts) => run(() => import('./commands/wake.js'), opts));

  const lock = program.command('lock').description('the cluster-wide deploy lock');
  lock.command('status').description('who holds the lock').action((opts) => run(() => import('./commands/lock.js'), 'status', opts));
  lock.command('release').description('release a stale lock').action((opts) => run(() => import('./commands/lock.js'), 'release', opts));

  const secrets = program.command('secrets').description('the app\'s secrets (values in .depl/secrets or DEPL_SECRET_<NAME>; never printed)');
  secrets.command('set')
    .description('set a secret from stdin or a hidden prompt (never from the command line); takes effect with the next buildinst')
    .argument('<name>', 'a secret declared in depl.yaml')
    .option('--generate', 'generate a strong random value instead')
    .action((name, opts) => run(() => import('./commands/secrets.js'), 'set', name, opts));
  secrets.command('list')
    .description('names, where each value comes from, and when it changed (never values)')
    .action((opts) => run(() => import('./commands/secrets.js'), 'list', undefined, opts));
  secrets.command('import')
    .description('copy secrets from an Ansible Vault file (the names given, or every declared one it holds) into the secrets file, never printing them')
    .argument('[names...]', 'secrets declared in depl.yaml (default: every declared one the vault holds)')
    .requiredOption('--vault <file>', 'the Ansible Vault file (opened with ansible-vault view)')
    .option('--vault-password-file <file>', 'the vault password in a file; without it ansible-vault asks on the terminal')
    .action((names, opts) => run(() => import('./commands/secrets.js'), 'import', undefined, { ...opts, names }));
  secrets.command('rm')
    .description('remove a secret from the secrets file')
    .argument('<name>', 'secret name')
    .action((name, opts) => run(() => import('./commands/secrets.js'), 'rm', name, opts));

  const tls = program.command('tls').description('HTTPS certificates of the edge');
  tls.command('renew')
    .description('renew certificates with fewer than 30 days left (or all, with --force) and reload the edge gracefully')
    .option('--force', 'renew every certificate, due or not')
    .option('--lock-wait <duration>', LOCK_WAIT_HELP)
    .option('--dry-run', 'print the plan (certificates to issue, renew, remove; the edge change); change nothing')
    .action((opts) => run(() => import('./commands/tls-renew.js'), opts));

  const crawl = program.command('crawl').description('use the crawler app deployed on the cluster');
  crawl.command('submit')
    .description('create a crawl job')
    .argument('<url...>', 'start URLs (http or https)')
    .option('--depth <n>', 'link depth to follow', nonNegativeInt, 2)
    .option('--max-pages <n>', 'stop after this many pages', positiveInt, 100)
    .option('--include <pattern>', 'follow only links matching one of these (repeatable): a glob (* within a path segment, ** across, ? one character) or /regex/flags', collect, [])
    .option('--exclude <pattern>', 'never follow links matching this (repeatable): a glob or /regex/flags', collect, [])
    .option('--archive', 'keep every page and image answer, for depl crawl export --format wacz')
    .option('--wait', 'show progress and end with the summary')
    .option('--timeout <duration>', 'with --wait: give up waiting after this long (e.g. 90s, 10m); the job keeps running')
    .option('--api <url>', 'crawler API base URL (default: the live version through the edge)')
    .option('--insecure', 'allow sending the API token over plain http to a non-loopback address')
    .option('--cacert <file>', 'also trust this CA (PEM) for the API\'s HTTPS certificate')
    .action((urls, opts) => run(() => import('./commands/crawl-submit.js'), urls, opts));
  crawl.command('status')
    .description('job state and counts')
    .argument('<job>', 'job id')
    .option('--api <url>', 'crawler API base URL')
    .option('--insecure', 'allow sending the API token over plain http to a non-loopback address')
    .option('--cacert <file>', 'also trust this CA (PEM) for the API\'s HTTPS certificate')
    .action((job, opts) => run(() => import('./commands/crawl-status.js'), job, opts));
  crawl.command('results')
    .description('images found, with the page each was found on')
    .argument('<job>', 'job id')
    .addOption(new Option('--format <format>', 'output format (csv: RFC 4180, formula-guarded)').choices(['json', 'csv', 'jsonl']).default('json'))
    .option('--bom', 'start the CSV with a UTF-8 byte order mark (for spreadsheet apps)')
    .option('--api <url>', 'crawler API base URL')
    .option('--insecure', 'allow sending the API token over plain http to a non-loopback address')
    .option('--cacert <file>', 'also trust this CA (PEM) for the API\'s HTTPS certificate')
    .action((job, opts) => run(() => import('./commands/crawl-results.js'), job, opts));
  crawl.command('download')
    .description('download the images a job fetched (fetchImages) into a folder or a zip, one file per content, with images.jsonl; a rerun keeps the files already there with the right hash and continues a cut one')
    .argument('<job>', 'job id')
    .option('--dir <folder>', 'where to put them (default: ./crawl-<job>)')
    .option('--zip [file]', 'one zip archive instead of a folder (default: ./crawl-<job>.zip)')
    .option('--type <types>', 'only these types, comma-separated (png,jpeg,gif,webp,svg,avif,bmp,ico)')
    .option('--min-bytes <n>', 'only files of at least this many bytes')
    .option('--max-bytes <n>', 'only files of at most this many bytes')
    .option('--min-width <px>', 'only images at least this many pixels wide')
    .option('--min-height <px>', 'only images at least this many pixels high')
    .option('--api <url>', 'crawler API base URL')
    .option('--insecure', 'allow sending the API token over plain http to a non-loopback address')
    .option('--cacert <file>', 'also trust this CA (PEM) for the API\'s HTTPS certificate')
    .action((job, opts) => run(() => import('./commands/crawl-download.js'), job, opts));
  crawl.command('export')
    .description('write an archive job\'s WACZ: WARC records of every page and image fetched, pages.jsonl, a CDXJ index, datapackage.json with hashes and provenance')
    .argument('<job>', 'job id (a job submitted with --archive)')
    .addOption(new Option('--format <format>', 'archive format').choices(['wacz']).default('wacz'))
    .option('--out <file>', 'where to write it (default: ./crawl-<job>.wacz)')
    .option('--api <url>', 'crawler API base URL')
    .option('--insecure', 'allow sending the API token over plain http to a non-loopback address')
    .option('--cacert <file>', 'also trust this CA (PEM) for the API\'s HTTPS certificate')
    .action((job, opts) => run(() => import('./commands/crawl-export.js'), job, opts));

  crawl.command('delete')
    .description('delete a job and its data: its record, queued tasks, results, and its contents in the image store (a content another job also holds stays); a running job is cancelled first; asks on a terminal, --yes otherwise')
    .argument('<job>', 'job id')
    .option('--dry-run', 'print the plan (cancel, delete); change nothing')
    .option('--api <url>', 'crawler API base URL')
    .option('--insecure', 'allow sending the API token over plain http to a non-loopback address')
    .option('--cacert <file>', 'also trust this CA (PEM) for the API\'s HTTPS certificate')
    .action((job, opts) => run(() => import('./commands/crawl-delete.js'), job, opts));

  for (const sub of [program, lock, secrets, tls, crawl]) sub.exitOverride();
  return program;
}

export function globalsOf(program: Command): GlobalOptions {
  return program.opts<GlobalOptions>();
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

function poolSize(value: string, previous: Record<string, number>): Record<string, number> {
  const match = /^([a-z][a-z0-9-]*)=(\d+)$/.exec(value);
  if (!match) throw new InvalidArgumentError('expected <pool>=<nodes>, like crawl=3');
  return { ...previous, [match[1]!]: Number(match[2]) };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number of at least 0');
  return n;
}

function percentage(value: string): number {
  const n = Number(value.replace(/%$/, ''));
  if (!Number.isFinite(n) || n < 0 || n > 100) throw new InvalidArgumentError('expected a percentage from 0 to 100');
  return n;
}
