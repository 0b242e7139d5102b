/**
 * `npm run bench [-- --rate 1000 --seconds 60 --backlog 100000 --relay-entries 20000 --sink-events 100000]`:
 * the whole pipeline on local servers, relay and sink as processes of their own.
 *
 * 1. Steady: `rate` commands/s for `seconds` through the write side's public API.
 * 2. Drain: relay and sink stopped, `backlog` commands written, then both started: events/s until
 *    every event is in MySQL.
 * 3. The relay's and the sink's own benchmarks (bench/relay.ts, bench/sink.ts), for their ratios
 *    and their ceilings: the drain's events/s is compared with the slowest stage's ceiling (the
 *    lowest of the relay's bare producer, one cursor reading the backlog's documents from MongoDB,
 *    measured here before the drain, and the sink's bare upsert or, when bench/sink.ts prints it, its
 *    consume ceiling).
 *
 * Every second, for the pictures, the counts of each stage are sampled: commands committed (counted
 * as their handlers return), records published (the topics' high watermarks) and events applied (the
 * sink's next offsets in MySQL). `--pictures <dir>` (default docs/bench) gets two SVGs: the lag
 * distribution and events/s per stage over time.
 *
 * The steady phase's lag is split at the record's Kafka timestamp (set by the relay's producer when it
 * sends): commit -> published is the relay's share, published -> applied the sink's.
 *
 * Lag of an event = the sink's `cqrs_sink_events.seen_at` (MySQL's clock, in the transaction that
 * wrote the row) minus the moment the command handler returned (the command committed), matched
 * through the command records the aggregate documents keep (a command's event ids). Same machine,
 * same clock. Last line:
 * `bench: e2e_eps=<n> lag_p50_ms=<n> lag_p99_ms=<n> relay_vs_raw=<r> sink_vs_raw=<r> sink_vs_debezium=<r>`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Kafka } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { loadHarnessConfig } from '../infra/local/config.js';
import { createKafkaClient } from '../ops/kafka.js';
import { startStack } from '../infra/local/stack.js';
import { testCatalog } from '../relay/testing.js';
import { EventCodec } from '../schemas/codec.js';
import { HEADERS } from '../schemas/envelope.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { SinkAdmin } from '../sink/admin.js';
import { APPLIED_LOG_MIGRATIONS, createTestDatabase } from '../sink/testing.js';
import { pipelineChildren } from '../test/chaos/chaos.js';
import { shopCommands } from '../test/support/shop.js';
import { SHOP_MIGRATIONS } from '../test/support/shop-read-model.js';
import { MongoWriteStore } from '../write/mongo-store.js';
import { aggregateCollectionName, type AggregateDocument } from '../write/outbox.js';
import { lagChart, ratesChart, type StageSample } from './e2e-charts.js';
import type { Marker } from './svg.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '60' },
    backlog: { type: 'string', default: '100000' },
    'relay-entries': { type: 'string', default: '20000' },
    'sink-events': { type: 'string', default: '100000' },
    // Commands in flight at most. At 1,000/s and the stand-in's 65–130 ms a command, fewer than
    // about 130 would hold the rate down themselves (64 did: 920–936/s).
    concurrency: { type: 'string', default: '128' },
    pictures: { type: 'string', default: path.join('docs', 'bench') },
  },
});
const num = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
  return n;
};

/** CPU seconds and peak RSS of a process, from /proc (Linux). */
function usage(pid: number | undefined): { cpu: number; rssMb: number } | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(fields[11]) + Number(fields[12])) / 100;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return { cpu, rssMb: Math.round(Number(hwm ?? 0) / 1024) };
  } catch {
    return undefined;
  }
}

const quantile = (sorted: readonly number[], q: number): number =>
  sorted.length === 0
    ? NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN);

/** Runs another bench as a child and returns its last line. */
async function lastLineOf(script: string, args: string[]): Promise<string> {
  const p = spawn(process.execPath, ['--import', 'tsx', path.join(here, script), ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => p.on('exit', r));
  const last = out.trim().split('\n').pop() ?? '';
  if (code !== 0) throw new Error(`${script} exited ${String(code)}: ${last}`);
  return last;
}

const field = (line: string, name: string): string =>
  new RegExp(`${name}=([0-9.]+)`).exec(line)?.[1] ?? 'NaN';

/** Event id -> the record's Kafka timestamp (ms), for the first `total` records on the topics. */
async function recordTimes(
  kafka: Kafka,
  topics: readonly string[],
  total: number,
): Promise<Map<string, number>> {
  const times = new Map<string, number>();
  const consumer = kafka.consumer({ groupId: `bench-reader-${Date.now()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...topics], fromBeginning: true });
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    await consumer.run({
      eachMessage: ({ message }) => {
        const id = message.headers?.[HEADERS.eventId]?.toString();
        if (id) times.set(id, Number(message.timestamp));
        if (times.size >= total) done();
        return Promise.resolve();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, 120_000)))]);
    clearTimeout(timer);
  } finally {
    await consumer.disconnect();
  }
  return times;
}

const summary = (sorted: readonly number[]): string =>
  `p50=${Math.round(quantile(sorted, 0.5))} p95=${Math.round(quantile(sorted, 0.95))} p99=${Math.round(quantile(sorted, 0.99))} ms`;

const stack = await startStack({ config: loadHarnessConfig(), log: say });
let exitCode = 1;
try {
  for (const line of stack.lines()) say(line);
  if (stack.env.CQRS_SYNC_MONGO_KIND !== 'real') {
    say(
      'NOTE: MongoDB is the mongo-java-server stand-in (its own speed, not MongoDB’s): figures for the write side and the relay are the stand-in’s.',
    );
  }
  const run = `bench${Date.now().toString(36)}`;
  const catalog = testCatalog(run);
  const codec = new EventCodec(catalog, new ConfluentRegistry(stack.env.SCHEMA_REGISTRY_URL ?? ''));
  await codec.registerAll();
  const mongo = new MongoClient(stack.env.MONGODB_URI ?? '');
  await mongo.connect();
  const db = await createTestDatabase(
    stack.env.MYSQL_URL ?? '',
    stack.env.MYSQL_SINK_URL ?? '',
    run,
    [SHOP_MIGRATIONS, APPLIED_LOG_MIGRATIONS],
  );
  const { relay, sink } = pipelineChildren(
    run,
    {
      kafkaBrokers: (stack.env.KAFKA_BROKERS ?? '').split(','),
      schemaRegistryUrl: stack.env.SCHEMA_REGISTRY_URL ?? '',
      mongodbUri: stack.env.MONGODB_URI ?? '',
    },
    db,
    { relay: { RELAY_TOPIC_PARTITIONS: '6' } },
  );
  const store = new MongoWriteStore({
    client: mongo,
    database: run,
    logger: pino({ level: 'error' }),
  });
  const commands = shopCommands(store, codec);
  const brokers = (stack.env.KAFKA_BROKERS ?? '').split(',');
  const kafka = createKafkaClient({ clientId: `${run}-bench`, brokers });
  const admin = kafka.admin();
  await admin.connect();
  const topics = catalog.topics();
  let n = 0;
  /** Commands whose handler returned, for the per-second samples. */
  let committedCount = 0;
  let failures = 0;
  /** Why commands failed: error code (or name) -> count, printed with the failure counts. */
  const failedWhy = new Map<string, number>();
  const failed = (e: unknown): void => {
    failures++;
    const code = (e as { code?: unknown }).code;
    const why = typeof code === 'string' ? code : e instanceof Error ? e.name : 'unknown';
    failedWhy.set(why, (failedWhy.get(why) ?? 0) + 1);
  };
  const whyFailed = (): string =>
    failedWhy.size === 0 ? '' : ` (${[...failedWhy].map(([k, n]) => `${k}: ${n}`).join(', ')})`;
  /** commandId -> when its handler returned (committed). */
  const committed = new Map<string, number>();
  /** One command: new customers mostly, renames of recent ones. */
  const command = async (): Promise<void> => {
    const i = n++;
    // Renames go to a customer registered a while ago whose registration has committed (one still
    // in flight would be `aggregate_not_found`, which 64 lanes and a slow stand-in made happen).
    const target = i - 257 - ((i - 257) % 4 === 3 ? 1 : 0);
    if (i % 4 === 3 && target >= 0 && committed.has(`c-${target}`)) {
      await commands.RenameCustomer({
        commandId: `r-${i}`,
        customerId: `c-${target}`,
        name: `R${i}`,
      });
      committed.set(`r-${i}`, Date.now());
      committedCount++;
    } else {
      await commands.RegisterCustomer({
        commandId: `c-${i}`,
        customerId: `c-${i}`,
        name: `N${i}`,
        email: `c${i}@x.io`,
      });
      committed.set(`c-${i}`, Date.now());
      committedCount++;
    }
  };
  const customers = mongo
    .db(run)
    .collection<AggregateDocument>(aggregateCollectionName('Customer'));
  /** Events committed: every customer's version (one event per command, versions 1..n). */
  const committedEvents = async (): Promise<number> => {
    const [r] = await customers
      .aggregate<{ n: number }>([{ $group: { _id: null, n: { $sum: '$version' } } }])
      .toArray();
    return r?.n ?? 0;
  };
  const applied = async (): Promise<number> => {
    const [r] = await db.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM cqrs_sink_events');
    return Number(r?.n);
  };
  const waitApplied = async (total: number, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while ((await applied()) < total) {
      if (Date.now() > deadline) throw new Error(`only ${await applied()} of ${total} applied`);
      await sleep(100);
    }
  };
  const waitUp = async (): Promise<void> => {
    while (!relay.running || !sink.running) await sleep(100);
  };

  // Per-second samples of each stage's cumulative count, until the component benchmarks.
  const t0 = Date.now();
  const since = (): number => (Date.now() - t0) / 1000;
  const samples: StageSample[] = [];
  const phases: Marker[] = [];
  const phase = (label: string): void => void phases.push({ x: since(), label });
  const sampling = new AbortController();
  const sinkAdmin = new SinkAdmin({ connection: db.adminUrl, group: `${run}-sink`, poolSize: 1 });
  const sampleOnce = async (): Promise<void> => {
    const t = since();
    const c = committedCount;
    let published = 0;
    for (const topic of topics) {
      for (const o of await admin.fetchTopicOffsets(topic).catch(() => []))
        published += Number(o.high);
    }
    samples.push({ t, committed: c, published, applied: (await sinkAdmin.counts()).applied });
  };
  const sampler = (async () => {
    while (!sampling.signal.aborted) {
      const start = Date.now();
      await sampleOnce().catch(() => undefined);
      await sleep(Math.max(0, 1000 - (Date.now() - start)));
    }
  })();

  // 1. Steady load.
  const rate = num('rate');
  const seconds = num('seconds');
  relay.spawn();
  sink.spawn();
  await waitUp();
  await sleep(3000); // the sink joins its group
  const before = { relay: usage(relay.proc?.pid), sink: usage(sink.proc?.pid) };
  say(`steady: ${rate} commands/s for ${seconds} s…`);
  phase('steady');
  const concurrency = num('concurrency');
  let inFlight = 0;
  let behind = 0;
  /** How late the sender was at most against its schedule (a lane freed late, or a slow loop). */
  let slipMs = 0;
  const started = Date.now();
  const pending = new Set<Promise<void>>();
  for (let k = 0; k < rate * seconds; k++) {
    const due = started + (k * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    if (inFlight >= concurrency) {
      behind++;
      await Promise.race(pending);
    }
    slipMs = Math.max(slipMs, Date.now() - due);
    inFlight++;
    const p = command()
      .catch(failed)
      .finally(() => {
        inFlight--;
        pending.delete(p);
      });
    pending.add(p);
  }
  await Promise.all(pending);
  const steadyCommands = n;
  const sent = (Date.now() - started) / 1000;
  const steadyEvents = await committedEvents();
  phase('all sent');
  await waitApplied(steadyEvents, 300_000);
  const after = { relay: usage(relay.proc?.pid), sink: usage(sink.proc?.pid) };
  // Event id -> command id, from the command records each aggregate keeps (fewer commands per
  // customer here than `commandIdsKept`, so none was dropped).
  const entries = (await customers.find({}, { projection: { commands: 1 } }).toArray()).flatMap(
    (d) =>
      d.commands.flatMap((c) => c.eventIds.map((eventId) => ({ eventId, commandId: c.commandId }))),
  );
  const seen = new Map(
    (
      await db.query<{ event_id: string; at: string }>(
        "SELECT event_id, DATE_FORMAT(seen_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS at FROM cqrs_sink_events",
      )
    ).map((r) => [r.event_id, Date.parse(r.at)]),
  );
  const lags = entries
    .map((e) => (seen.get(e.eventId) ?? NaN) - (committed.get(e.commandId) ?? NaN))
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  const p50 = quantile(lags, 0.5);
  const p95 = quantile(lags, 0.95);
  const p99 = quantile(lags, 0.99);
  // Where the steady lag goes: commit -> Kafka timestamp (relay), Kafka timestamp -> row (sink).
  const sentAt = await recordTimes(kafka, topics, steadyEvents);
  const relayShare: number[] = [];
  const sinkShare: number[] = [];
  for (const e of entries) {
    const k = sentAt.get(e.eventId);
    const c = committed.get(e.commandId);
    const s = seen.get(e.eventId);
    if (k === undefined || c === undefined || s === undefined) continue;
    relayShare.push(k - c);
    sinkShare.push(s - k);
  }
  relayShare.sort((a, b) => a - b);
  sinkShare.sort((a, b) => a - b);
  say(
    `steady: ${steadyCommands} commands in ${sent.toFixed(1)} s (${Math.round(steadyCommands / sent)}/s offered, from the first send to the last commit; ${behind} waited for a free lane, none sent more than ${Math.round(slipMs)} ms after its time; ${failures} failed${whyFailed()}), ${steadyEvents} events; lag p50=${Math.round(p50)} ms p95=${Math.round(p95)} ms p99=${Math.round(p99)} ms max=${Math.round(lags[lags.length - 1] ?? NaN)} ms`,
  );
  say(
    `  lag split (${relayShare.length} events): commit -> published (relay) ${summary(relayShare)}; published -> applied (sink) ${summary(sinkShare)}`,
  );
  for (const name of ['relay', 'sink'] as const) {
    const a = before[name];
    const b = after[name];
    if (a && b) {
      say(
        `  ${name}: ${((100 * (b.cpu - a.cpu)) / sent).toFixed(0)}% of one core, peak RSS ${b.rssMb} MB`,
      );
    }
  }
  for (const server of ['kafka', 'mysql', 'mongodb', 'schema-registry'] as const) {
    const u = usage(stack.get(server)?.pids()[0]);
    if (u) say(`  ${server}: peak RSS ${u.rssMb} MB, ${u.cpu.toFixed(0)} CPU s since start`);
  }

  // 2. Drain a backlog.
  const backlog = num('backlog');
  await relay.kill('SIGTERM');
  await sink.kill('SIGTERM');
  say(`drain: writing ${backlog} commands with relay and sink stopped…`);
  phase('backlog write');
  const writeStart = Date.now();
  const lanes = Array.from({ length: 16 }, async () => {
    while (n < steadyCommands + backlog) await command().catch(failed);
  });
  await Promise.all(lanes);
  const total = await committedEvents();
  say(
    `  written in ${((Date.now() - writeStart) / 1000).toFixed(1)} s; ${total} events in all; ${failures} commands failed${whyFailed()}`,
  );
  // One cursor over every aggregate document, as a relay with nothing else to do would read them:
  // the MongoDB part of the relay's ceiling, on the same server and documents.
  const readStart = Date.now();
  let docsRead = 0;
  for await (const _ of customers.find({}, { batchSize: 1000 })) docsRead++;
  const readEps = Math.round(docsRead / ((Date.now() - readStart) / 1000));
  say(`  one cursor read ${docsRead} aggregate documents at ${readEps} documents/s`);
  phase('drain');
  const drainStart = Date.now();
  relay.spawn();
  sink.spawn();
  await waitApplied(total, 1_800_000);
  const drainSeconds = (Date.now() - drainStart) / 1000;
  const eps = Math.round((total - steadyEvents) / drainSeconds);
  say(
    `drain: ${total - steadyEvents} events in ${drainSeconds.toFixed(1)} s = ${eps} events/s (relay and sink start included)`,
  );
  phase('drained');
  await sleep(2000);
  sampling.abort();
  await sampler;
  await sinkAdmin.close();
  await relay.kill('SIGTERM');
  await sink.kill('SIGTERM');
  await admin.disconnect();
  await mongo.close();
  await db.drop();

  // 3. The component benchmarks.
  say('relay and sink benchmarks (their own runs)…');
  const relayLine = await lastLineOf('relay.ts', [values['relay-entries']]);
  say(`  ${relayLine}`);
  const sinkLine = await lastLineOf('sink.ts', [values['sink-events']]);
  say(`  ${sinkLine}`);

  // The drain against the slowest stage's ceiling (each ceiling from this run).
  const ceilings: [string, number][] = [
    ['relay produce (bench-relay raw_eps)', Number(field(relayLine, 'raw_eps'))],
    ['relay read (one MongoDB cursor)', readEps],
    Number.isFinite(Number(field(sinkLine, 'consume_eps')))
      ? ['sink consume (bench-sink consume_eps)', Number(field(sinkLine, 'consume_eps'))]
      : ['sink upsert (bench-sink raw_eps)', Number(field(sinkLine, 'raw_eps'))],
  ];
  const known = ceilings.filter(([, v]) => Number.isFinite(v) && v > 0);
  const slowest = known.reduce<[string, number] | undefined>(
    (m, c) => (m === undefined || c[1] < m[1] ? c : m),
    undefined,
  );
  say(
    `drain vs ceiling: ${known.map(([k, v]) => `${k}=${v}`).join(', ')}; slowest ${slowest?.[0] ?? 'none'}: ${eps} / ${slowest?.[1] ?? NaN} = ${slowest ? (eps / slowest[1]).toFixed(2) : 'NaN'}`,
  );

  // The pictures.
  const dir = path.resolve(root, values.pictures);
  mkdirSync(dir, { recursive: true });
  const machine = `${os.cpus().length} cores, ${os.cpus()[0]?.model.trim() ?? '?'}`;
  const caption = `npm run bench -- --rate ${rate} --seconds ${seconds} --backlog ${backlog}; ${machine}; ${new Date().toISOString().slice(0, 10)}; MongoDB: ${stack.env.CQRS_SYNC_MONGO_KIND === 'real' ? 'mongod' : 'mongo-java-server stand-in'}`;
  writeFileSync(
    path.join(dir, 'e2e-lag.svg'),
    lagChart({ sortedLags: lags, p50, p99, caption: `steady phase; ${caption}` }),
  );
  writeFileSync(path.join(dir, 'e2e-rates.svg'), ratesChart({ samples, phases, caption }));
  writeFileSync(
    path.join(dir, 'e2e-samples.json'),
    `${JSON.stringify({ caption, phases, samples })}\n`,
  );
  say(
    `pictures: ${path.relative(root, dir)}/e2e-lag.svg, e2e-rates.svg (samples in e2e-samples.json)`,
  );
  say(
    `bench: e2e_eps=${eps} lag_p50_ms=${Math.round(p50)} lag_p99_ms=${Math.round(p99)} relay_vs_raw=${field(relayLine, 'ratio')} sink_vs_raw=${field(sinkLine, 'vs_raw')} sink_vs_debezium=${field(sinkLine, 'vs_debezium')}`,
  );
  exitCode = 0;
} finally {
  await stack.stop();
}
process.exit(exitCode);
