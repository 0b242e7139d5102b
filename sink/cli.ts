/**
 * `cqrs-sync sink …`: the sink's commands, for the `bin/` dispatcher.
 *
 *   sink [run]                       apply events until SIGTERM/SIGINT (exit 0) or a crash (exit 1)
 *   sink migrate                     run the sink's and the read model's migrations (MYSQL_URL)
 *   sink dlq list                    dead letters and parked aggregates
 *   sink dlq show <id>               one held record, decoded when possible
 *   sink dlq redrive <target>        apply a parked aggregate's held events in order and un-park it
 *   sink dlq drop <id>               discard one dead letter (un-parks its aggregate if nothing else is held)
 *   sink replay --to earliest|<time> [--shadow] [--json] [--log-file <f>]
 *                                    rebuild / re-deliver (group must be idle), with progress
 */
import { userInfo } from 'node:os';
import mysql from 'mysql2/promise';
import pino, { type Logger } from 'pino';
import type { Catalog } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { SinkAdmin } from './admin.js';
import { loadSinkConfig, type SinkConfig } from './config.js';
import { runMigrations, SINK_MIGRATIONS, type MigrationSet } from './migrations.js';
import type { Projection } from './projection.js';
import { ProgressReporter, seconds } from '../ops/progress.js';
import { replay } from './replay.js';
import { startSink } from './sink.js';
import { createLogger } from '../ops/logger.js';
import { runProcess } from '../ops/process-runner.js';

export interface SinkUser {
  readonly catalog: Catalog;
  readonly projections: readonly Projection[];
  /** The read model's migrations (`sink migrate` runs them after the sink's own). */
  readonly migrations?: MigrationSet | readonly MigrationSet[];
}

export interface CliIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** Environment for the config (default process.env, read in config.ts). */
  readonly env?: NodeJS.ProcessEnv;
  readonly logger?: Logger;
  /** Registers shutdown signals; default: SIGTERM and SIGINT on `process` (ops/process-runner.ts). */
  readonly onSignal?: (handler: (signal?: string) => void) => () => void;
}

const HELP: Record<string, string> = {
  sink: `usage: cqrs-sync sink <command>

commands:
  run                 apply events to MySQL until SIGTERM/SIGINT (the default)
  migrate             run the sink's and the read model's migrations (needs MYSQL_URL with DDL rights)
  dlq list|show|redrive|drop
                      dead letters, parked aggregates, re-drive
  replay              rebuild the read model or re-deliver from a time

Every command takes --help. Configuration comes from the environment: see docs/sink.md.
example:
  KAFKA_BROKERS=localhost:9092 SCHEMA_REGISTRY_URL=http://localhost:8081 \\
  MYSQL_URL=mysql://admin:pw@localhost/read MYSQL_SINK_URL=mysql://sink:pw@localhost/read cqrs-sync sink run`,
  run: `usage: cqrs-sync sink run

Consumes every topic of the catalog (or SINK_TOPICS) in group SINK_GROUP_ID and applies each event once,
in per-aggregate version order. SIGTERM/SIGINT drain the batch in flight, commit and exit 0; a crash
exits 1.
example:
  cqrs-sync sink run`,
  migrate: `usage: cqrs-sync sink migrate

Applies pending migrations of the sink's own tables and of the read model, with MYSQL_URL.
example:
  MYSQL_URL=mysql://admin:pw@localhost/read cqrs-sync sink migrate`,
  dlq: `usage: cqrs-sync sink dlq <list|show <id>|redrive <target>|drop <id>> [--json] [--by <who>]

  list              dead letters (with error and attempts) and every parked aggregate with its held events
  show <id>         one held record: headers, error, decoded payload and state
  redrive <target>  applies the parked aggregate's held events in version order (gaps accepted: events
                    carry the state) and un-parks it; target: a held id, an event id, Type/aggregateId
                    or an aggregate id. If an event still fails, nothing is applied and attempts grow.
  drop <id>         discards one dead letter; when nothing else of its aggregate is held, the aggregate
                    is un-parked (else it stays parked until re-driven, and drop says so)
  --by <who>        (redrive, drop) who decided, kept with the decision (default: the login name)
A drop or a successful re-drive is kept per event id: a replay skips a dropped event again, and
applies a re-driven one as the re-drive did.
examples:
  cqrs-sync sink dlq list
  cqrs-sync sink dlq show 17
  cqrs-sync sink dlq redrive Order/8d1c…
  cqrs-sync sink dlq drop 17`,
  replay: `usage: cqrs-sync sink replay --to earliest|<ISO time> [--group <g>] [--shadow] [--json] [--log-file <f>]

Refused while the group has active members (stop the sinks first).
  --to earliest        rebuild: empties the read model and the sink's bookkeeping, re-applies everything
                       (dead letters dropped or re-driven before stay so: see \`dlq --help\`)
  --to <time>          re-deliver from that time; dedupe and the version gate apply only what is missing
  --shadow             (with earliest) rebuild into <table>__shadow tables, then swap them in with one
                       atomic RENAME: reads are served from the old tables until the swap
  --group <g>          default SINK_GROUP_ID
  --json               the summary as one JSON object, alone on stdout
  --log-file <f>       the logs, at LOG_LEVEL, appended to <f>
Progress goes to stderr: each phase (stopping, rewinding, applying, draining, swapping) as it
starts, then a bar redrawn in place on a terminal, or a line every 5 s otherwise. stdout gets the
summary: each phase's duration and the applying rate. Logs never share the progress's stream:
without --log-file they are held to warn and go to stdout (with --json to stderr, which then shows
no progress). When it finishes, start the sinks again.
examples:
  cqrs-sync sink replay --to earliest --shadow
  cqrs-sync sink replay --to 2026-11-20T00:00:00Z`,
};

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export async function sinkCli(
  argv: readonly string[],
  user: SinkUser,
  io: Partial<CliIo> = {},
): Promise<number> {
  const out = io.out ?? ((l: string) => void process.stdout.write(`${l}\n`));
  const err = io.err ?? ((l: string) => void process.stderr.write(`${l}\n`));
  const args = argv[0] === 'sink' ? argv.slice(1) : [...argv];
  const command = args[0] && !args[0].startsWith('-') ? args[0] : 'run';
  const rest = args[0] === command ? args.slice(1) : args;
  if (args.includes('--help') || args.includes('-h') || command === 'help') {
    out(HELP[command] ?? HELP.sink ?? '');
    return 0;
  }
  if (!HELP[command]) {
    err(`unknown command "${command}"\n\n${HELP.sink ?? ''}`);
    return 2;
  }
  let config: SinkConfig;
  try {
    config = loadSinkConfig(io.env);
  } catch (e) {
    err(isPipelineError(e) ? e.message : String(e));
    return 2;
  }
  const logger = io.logger ?? createLogger(config.logLevel);
  try {
    switch (command) {
      case 'run':
        return await run(user, config, logger, io);
      case 'migrate':
        return await migrate(user, config, out);
      case 'dlq':
        return await dlq(rest, user, config, logger, out, err);
      default: {
        return await replayCommand(rest, user, config, io, out, err);
      }
    }
  } catch (e) {
    err(
      `sink ${command} failed: ${isPipelineError(e) ? e.message : e instanceof Error ? e.message : String(e)}`,
    );
    return 1;
  }
}

/**
 * Progress on stderr (phases, then a bar on a terminal or a line every 5 s otherwise), the result on
 * stdout (a summary line, or JSON with --json). Logs never share a stream with the progress: with
 * --log-file they go there at LOG_LEVEL; else they are held to warn (the embedded sink's info
 * records would drown the progress) and go to stdout before the summary line, or, with --json, to
 * stderr, which then shows no progress (stdout is the JSON alone).
 */
async function replayCommand(
  rest: readonly string[],
  user: SinkUser,
  config: SinkConfig,
  io: Partial<CliIo>,
  out: (l: string) => void,
  err: (l: string) => void,
): Promise<number> {
  const to = flag([...rest], '--to');
  if (!to || (to !== 'earliest' && Number.isNaN(Date.parse(to)))) {
    err(`replay needs --to earliest or --to <ISO time>\n\n${HELP.replay ?? ''}`);
    return 2;
  }
  const logFile = flag([...rest], '--log-file');
  if (rest.includes('--log-file') && (!logFile || logFile.startsWith('--'))) {
    err(`--log-file needs a file name\n\n${HELP.replay ?? ''}`);
    return 2;
  }
  const json = rest.includes('--json');
  const group = flag([...rest], '--group');
  let logTo: ReturnType<typeof pino.destination> | undefined;
  if (logFile) {
    try {
      logTo = pino.destination({ dest: logFile, append: true, mkdir: false, sync: true });
    } catch (e) {
      err(
        `replay: cannot write --log-file ${logFile}: ${e instanceof Error ? e.message : String(e)}`,
      );
      return 2;
    }
  }
  const logsOnStderr = json && !logTo;
  const progress = new ProgressReporter({
    // A terminal gets the bar; pipes and files plain lines (no control characters).
    tty: io.err === undefined && process.stderr.isTTY,
    columns: () => process.stderr.columns,
    write: logsOnStderr
      ? () => undefined
      : io.err
        ? (text) => {
            for (const l of text.replace(/\n$/, '').split('\n')) io.err?.(l);
          }
        : (text) => void process.stderr.write(text),
  });
  const logger =
    io.logger ??
    (logTo
      ? createLogger(config.logLevel, logTo)
      : createLogger(atLeastWarn(config.logLevel), {
          write: (record: string) => {
            (logsOnStderr ? err : out)(record.trimEnd());
          },
        }));
  try {
    const r = await replay({
      catalog: user.catalog,
      projections: user.projections,
      config: group ? { ...config, groupId: group } : config,
      to: to === 'earliest' ? 'earliest' : new Date(to),
      shadow: rest.includes('--shadow'),
      logger,
      progress,
    });
    const s = progress.finish();
    const rate = Math.round(s.eventsPerSecond * 10) / 10;
    if (json) {
      out(
        JSON.stringify({
          events: r.events,
          swapped: r.swapped,
          totalMs: s.totalMs,
          phaseMs: s.phaseMs,
          applyingEventsPerSecond: rate,
        }),
      );
    } else {
      const phases = Object.entries(s.phaseMs).map(([name, ms]) => `${name} ${seconds(ms)}`);
      out(
        `replayed ${r.events} events in ${seconds(s.totalMs)} (${phases.join(', ')}); applying rate ${Math.round(rate).toLocaleString('en')} ev/s${r.swapped ? '; shadow tables swapped in' : ''}`,
      );
    }
    return 0;
  } finally {
    progress.close();
    logger.flush();
    logTo?.end();
  }
}

/** During a replay the embedded sink's info records would drown the progress: warn and above. */
function atLeastWarn(level: string): string {
  const rank = pino.levels.values;
  return level === 'silent' || (rank[level] ?? 0) >= (rank.warn ?? 40) ? level : 'warn';
}

function run(
  user: SinkUser,
  config: SinkConfig,
  logger: Logger,
  io: Partial<CliIo>,
): Promise<number> {
  return runProcess({
    name: 'sink',
    logger,
    start: (signal) =>
      startSink({
        catalog: user.catalog,
        projections: user.projections,
        config,
        logger,
        signal,
      }),
    ...(io.onSignal ? { onSignal: io.onSignal } : {}),
  });
}

async function migrate(
  user: SinkUser,
  config: SinkConfig,
  out: (l: string) => void,
): Promise<number> {
  const conn = await mysql.createConnection(config.mysqlAdminUrl);
  try {
    const sets =
      user.migrations === undefined
        ? []
        : 'scope' in user.migrations
          ? [user.migrations]
          : user.migrations;
    const results = await runMigrations(conn, [SINK_MIGRATIONS, ...(sets as MigrationSet[])], out);
    for (const r of results)
      out(`${r.scope}: at version ${r.current} (${r.applied.length} applied now)`);
    return 0;
  } finally {
    await conn.end();
  }
}

async function dlq(
  args: readonly string[],
  user: SinkUser,
  config: SinkConfig,
  _logger: Logger,
  out: (l: string) => void,
  err: (l: string) => void,
): Promise<number> {
  const [sub, target] = args;
  const json = args.includes('--json');
  const admin = new SinkAdmin({
    connection: config.mysqlAdminUrl,
    poolSize: 2,
    group: config.groupId,
    catalog: user.catalog,
    projections: user.projections,
    codec: new EventCodec(user.catalog, new ConfluentRegistry(config.schemaRegistryUrl)),
  });
  try {
    switch (sub) {
      case 'list': {
        const dead = await admin.deadLetters();
        const parked = await admin.parked();
        if (json) {
          out(JSON.stringify({ deadLetters: dead, parked }, null, 2));
          return 0;
        }
        out(`${dead.length} dead letter(s):`);
        for (const d of dead) {
          out(
            `  #${d.id} ${printable(d.aggregateType)}/${printable(d.aggregateId)} v${d.version} ${printable(d.eventType)} at ${d.topic}[${d.partition}]@${d.offset}: ${d.errorCode} (attempts ${d.attempts}): ${clip(printable(d.errorMessage), 160)}`,
          );
        }
        out(`${parked.length} parked or waiting aggregate(s):`);
        for (const p of parked) {
          out(
            `  ${printable(p.aggregateType)}/${printable(p.aggregateId)} at v${p.version} ${p.status} since ${p.statusSince}, ${p.heldIds.length} held${p.heldIds.length > 0 ? ` (#${p.heldIds.join(', #')})` : ''}: ${clip(printable(p.reason ?? ''), 160)}`,
          );
        }
        return 0;
      }
      case 'show': {
        if (!target) {
          err(HELP.dlq ?? '');
          return 2;
        }
        const h = await admin.held(target);
        if (!h) {
          err(`no held record #${target}`);
          return 1;
        }
        const d = await admin.decode(h);
        out(
          JSON.stringify(
            {
              ...h,
              key: h.key?.toString() ?? null,
              value: undefined,
              valueBytes: h.value?.length ?? 0,
              decoded: d.ok
                ? { payload: d.event.payload, state: d.event.state }
                : { error: d.error.message },
            },
            null,
            2,
          ),
        );
        return 0;
      }
      case 'redrive': {
        if (!target) {
          err(HELP.dlq ?? '');
          return 2;
        }
        const r = await admin.redrive(target, decidedBy(args));
        out(
          `re-drove ${r.aggregate.aggregateType}/${r.aggregate.aggregateId}: ${r.applied} applied, ${r.stale} stale; un-parked`,
        );
        return 0;
      }
      case 'drop': {
        if (!target) {
          err(HELP.dlq ?? '');
          return 2;
        }
        const r = await admin.drop(target, decidedBy(args));
        const agg = `${r.aggregate.aggregateType}/${r.aggregate.aggregateId}`;
        out(
          r.stillHeld === 0
            ? `dropped dead letter #${target}; ${agg} had nothing else held and is un-parked`
            : `dropped dead letter #${target}; ${agg} stays parked with ${r.stillHeld} held event(s): run \`cqrs-sync sink dlq redrive ${agg}\``,
        );
        return 0;
      }
      default:
        err(HELP.dlq ?? '');
        return 2;
    }
  } finally {
    await admin.close();
  }
}

/** Who takes a drop or re-drive decision: `--by`, else the login name when there is one. */
function decidedBy(args: readonly string[]): string | null {
  let who = flag([...args], '--by');
  if (who === undefined) {
    try {
      who = userInfo().username;
    } catch {
      return null; // no passwd entry (some containers)
    }
  }
  return who === '' ? null : who.slice(0, 255);
}

/** Ids come from record keys, which may be any bytes: control characters are shown escaped (the
 * value quoted), never written to the terminal. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f-\u009f]/.test(s) ? JSON.stringify(s) : s;
}

/** At most `max` characters, cut at a word boundary when there is one in the second half. */
export function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const cut = s.lastIndexOf(' ', max - 1);
  return `${s.slice(0, cut > max / 2 ? cut : max - 1)}…`;
}
