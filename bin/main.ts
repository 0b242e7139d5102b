/**
 * `cqrs-sync <command>`: one bin for every process and operation. It loads the user's config module
 * (aggregates, projections) and hands it to the command.
 */
import { loadBinEnv } from './config.js';
import { loadUserConfig, migrationSetOf, type LoadedConfig } from './user-config.js';

const USAGE = `cqrs-sync — keeps a MySQL read model in step with a MongoDB write model

Usage: cqrs-sync [--config <file>] <command> [options]

Commands:
  relay [run]                 publish the aggregates' outbox entries (one active relay per name)
  relay snapshot              publish the current state of existing aggregates (initial load)
  snapshot                    the same as \`relay snapshot\`
  relay release <aggregateId> let a held aggregate flow again after its failed entry was fixed
  sink [run]                  apply events to the read model (a consumer group)
  sink migrate                run the read-model migrations (admin account)
  dlq list | show <id> | redrive <aggregate-or-event> | drop <id>
                              inspect and repair dead-lettered events and parked aggregates
  replay --group <g> --to earliest|<timestamp> [--shadow] [--json]
                              rebuild the read model from the topics
  status [--json]             lease, backlog, lag per partition, dead letters, parked aggregates
  verify [--type <T>] [--repair] [--json] [--max-rate <n>]
                              compare MongoDB with the read model, report (and repair) drift
  demo-web                    the demo's web app (compose runs it beside relay and sink)

Options:
  --config <file>   the config module (default: $CQRS_SYNC_CONFIG or ./cqrs-sync.config.ts)
  -h, --help        help; \`cqrs-sync <command> --help\` for a command's options and examples

Examples:
  cqrs-sync --config ./cqrs-sync.config.ts relay
  cqrs-sync sink
  cqrs-sync status
  cqrs-sync dlq redrive 0193a5f0-7c1e-7000-8000-000000000001
  cqrs-sync replay --group cqrs-sync-sink --to earliest --shadow`;

/** Splits `--config <file>` off the arguments; the rest belong to the command. */
export function splitArgs(argv: readonly string[]): { configFile?: string; rest: string[] } {
  const rest: string[] = [];
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--config') {
      configFile = argv[++i];
    } else if (a.startsWith('--config=')) {
      configFile = a.slice('--config='.length);
    } else {
      rest.push(a);
    }
  }
  return configFile === undefined ? { rest } : { configFile, rest };
}

type Handler = (argv: string[], loaded: LoadedConfig) => Promise<number>;

const commands: Record<string, Handler> = {
  relay: async (argv, loaded) => {
    const { relayCli } = await import('../relay/cli.js');
    return relayCli(argv, { catalog: loaded.catalog });
  },
  snapshot: async (argv, loaded) => {
    const { relayCli } = await import('../relay/cli.js');
    return relayCli(['snapshot', ...argv], { catalog: loaded.catalog });
  },
  sink: async (argv, loaded) => {
    const { sinkCli } = await import('../sink/cli.js');
    return sinkCli(['sink', ...argv], sinkUser(loaded));
  },
  dlq: async (argv, loaded) => {
    const { sinkCli } = await import('../sink/cli.js');
    return sinkCli(['dlq', ...argv], sinkUser(loaded));
  },
  status: async (argv, loaded) => {
    const { statusCli } = await import('./status.js');
    return statusCli(argv, loaded.catalog);
  },
  verify: async (argv, loaded) => {
    const { verifyCli } = await import('../verify/cli.js');
    return verifyCli(argv, {
      catalog: loaded.catalog,
      projections: loaded.config.projections ?? [],
    });
  },
  replay: async (argv, loaded) => {
    const { sinkCli } = await import('../sink/cli.js');
    return sinkCli(['replay', ...argv], sinkUser(loaded));
  },
};

function sinkUser(loaded: LoadedConfig) {
  return {
    catalog: loaded.catalog,
    projections: loaded.config.projections ?? [],
    migrations: migrationSetOf(loaded.config),
  };
}

export async function main(argv: readonly string[]): Promise<number> {
  const { configFile, rest } = splitArgs(argv);
  const [command, ...args] = rest;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'demo-web') {
    // The demo brings its own domain, so it runs without the user's config module (from any
    // directory, as `npx cqrs-sync demo-web`); the package ships it compiled (tsconfig.build.json).
    const { demoWebCli } = await import('../demo/web/cli.js');
    return demoWebCli(args);
  }
  const handler = commands[command];
  if (!handler) {
    console.error(`cqrs-sync: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  const loaded = await loadUserConfig(configFile ?? loadBinEnv().configFile);
  return handler(args, loaded);
}
