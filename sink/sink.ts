/**
 * `startSink`: the consumer group that applies events to MySQL. Each assignment starts fetching at
 * the offsets stored in MySQL (the truth; Kafka's committed offset only where MySQL has none). Per
 * partition batch: the records from MySQL's offset on are applied in transactions of up to
 * `batchSize` events, then the Kafka offset is committed. Retriable failures back off with jitter and retry the same batch, heartbeating, until
 * they succeed or the sink is stopped: nothing is skipped.
 */
import type mysql from 'mysql2/promise';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  propagation,
  trace,
  type Context,
  type Link,
} from '@opentelemetry/api';
import { Kafka, logLevel, type Consumer, type EachBatchPayload, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Catalog } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import { ConfluentRegistry, type RegistryPort } from '../schemas/registry.js';
import { Applier, add, emptyCounts, type OutcomeCounts } from './apply.js';
import { backoffDelay, sleep } from '../ops/backoff.js';
import type { SinkConfig } from './config.js';
import { KafkaDeadLetterPublisher } from './dead-letter.js';
import { rawRecord } from './decode.js';
import { SinkMetrics } from './metrics.js';
import { lastRun } from '../ops/verify-runs.js';
import { classifyError } from './mysql-errors.js';
import { MysqlStore } from './mysql-store.js';
import type { Projection } from './projection.js';
import { checkProjections, requiredTables } from './validate.js';
import { startOpsServer, type OpsServer, type ReadinessCheck } from '../ops/http.js';
import { StartupWait, addressOf } from '../ops/startup.js';
import { createTopicsAndWait, waitForLeaders, withAdmin } from '../ops/topics.js';
import { HEADERS } from '../schemas/envelope.js';
import { createLogger } from '../ops/logger.js';

export type SinkState = 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

export interface StartSinkOptions {
  readonly catalog: Catalog;
  readonly projections: readonly Projection[];
  readonly config: SinkConfig;
  readonly logger?: Logger;
  /** Borrowed clients: the sink does not close what it did not create. */
  readonly kafka?: Kafka;
  readonly pool?: mysql.Pool;
  readonly registry?: RegistryPort;
  /** Logical -> physical table names (shadow rebuilds). */
  readonly physical?: (table: string) => string;
  /** Overrides `config.mysqlUrl` (replay applies with the admin account). */
  readonly mysqlUrl?: string;
  /** Aborting ends the start-up wait (SIGTERM while a dependency is down). */
  readonly signal?: AbortSignal;
}

export interface SinkHandle {
  readonly state: SinkState;
  /** Outcomes so far. */
  readonly counts: Readonly<OutcomeCounts>;
  readonly metrics: Registry;
  readonly applier: Applier;
  /** Resolves when the sink stopped, rejects when it failed. */
  readonly done: Promise<void>;
  /** The operations endpoint (`/metrics`, `/healthz`, `/readyz`) when `config.opsPort` is set. */
  readonly opsUrl: string | undefined;
  /** Drains the batch in flight, commits, disconnects. Idempotent. */
  stop(): Promise<void>;
}

export function kafkaLogCreator(log: Logger) {
  return () =>
    ({
      level,
      log: entry,
    }: {
      level: number;
      log: { message: string } & Record<string, unknown>;
    }) => {
      const { message, ...rest } = entry;
      if (level <= (logLevel.ERROR as number)) log.error(rest, message);
      else if (level === (logLevel.WARN as number)) log.warn(rest, message);
      else log.debug(rest, message);
    };
}

export function createKafka(config: SinkConfig, logger: Logger): Kafka {
  return new Kafka({
    clientId: config.clientId,
    brokers: [...config.kafkaBrokers],
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(logger.child({ component: 'kafkajs' })),
  });
}

export async function startSink(o: StartSinkOptions): Promise<SinkHandle> {
  const { config, catalog } = o;
  const base = o.logger ?? createLogger(config.logLevel);
  const log = base.child({ component: 'sink' });
  let state: SinkState = 'starting';
  const transition = (to: SinkState, fields: Record<string, unknown> = {}): void => {
    const from = state;
    state = to;
    if (to === 'failed') log.error({ from, to, ...fields }, 'sink state changed');
    else log.info({ from, to, ...fields }, 'sink state changed');
  };
  log.info({ state, group: config.groupId }, 'sink starting');

  checkProjections(catalog, o.projections);
  const topics = config.topics.length > 0 ? [...config.topics] : catalog.topics();
  const counts = emptyCounts();
  const abort = new AbortController();
  const aborted = (): boolean => abort.signal.aborted;
  const store = new MysqlStore({
    connection: o.pool ?? o.mysqlUrl ?? config.mysqlUrl,
    poolSize: config.poolSize,
    lockWaitTimeoutMs: config.lockWaitTimeoutMs,
    ...(o.physical ? { physical: o.physical } : {}),
  });
  const metrics = new SinkMetrics({
    parked: () => store.countParked(),
    deadLetters: () => store.countDeadLetters(),
    lastVerify: () => lastRun(store.pool),
  });
  // The base logger, so kafkajs lines carry one `component` key, not two.
  const kafka = o.kafka ?? createKafka(config, base);
  const registry = o.registry ?? new ConfluentRegistry(config.schemaRegistryUrl);
  let producer: Producer | undefined;
  let consumer: Consumer | undefined;
  let gapTimer: NodeJS.Timeout | undefined;
  /** The gap check under way: stop waits for it, so it never logs or queries after the sink stopped. */
  let gapCheck: Promise<void> | undefined;
  let ops: OpsServer | undefined;
  let joined = false;
  /** When the broker last answered the consumer (a fetch or a heartbeat): readiness goes by it. */
  let brokerSeenAt = 0;
  /** Set while a batch is being retried: readiness reports it (MySQL down, locks…). */
  let retryingSince: number | undefined;
  let resolveDone!: () => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  done.catch(() => undefined);

  const cleanup = async (): Promise<void> => {
    await ops?.close().catch(() => undefined);
    if (gapTimer) clearInterval(gapTimer);
    await gapCheck?.catch(() => undefined);
    await consumer?.disconnect().catch((e: unknown) => {
      log.warn({ err: e }, 'consumer disconnect failed');
    });
    await producer?.disconnect().catch((e: unknown) => {
      log.warn({ err: e }, 'producer disconnect failed');
    });
    await store.close().catch((e: unknown) => {
      log.warn({ err: e }, 'mysql pool close failed');
    });
  };

  // Serving /readyz while it waits: not ready, saying for what; then the running checks.
  const startup = new StartupWait({
    logger: log,
    timeoutMs: config.startupTimeoutMs,
    setting: 'SINK_STARTUP_TIMEOUT_MS',
    backoff: config.retry,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  let runningChecks: (() => Promise<Record<string, ReadinessCheck>>) | undefined = undefined;
  if (config.opsPort !== undefined) {
    try {
      ops = await startOpsServer({
        port: config.opsPort,
        ...(config.opsHost ? { host: config.opsHost } : {}),
        registries: [metrics.registry],
        liveness: () => state !== 'failed',
        readiness: () =>
          runningChecks
            ? runningChecks()
            : Promise.resolve({
                state: { ok: false, detail: state },
                startup: startup.readiness(),
              }),
      });
      log.info({ url: ops.url }, 'operations endpoint: /metrics /healthz /readyz');
    } catch (e) {
      // The pipeline matters more than its endpoint: say so loudly and go on.
      log.error({ err: e, port: config.opsPort }, 'operations endpoint could not start');
    }
  }

  let applier: Applier;
  try {
    const brokers = config.kafkaBrokers.join(',');
    await startup.waitFor([
      {
        name: 'mysql',
        address: addressOf(o.mysqlUrl ?? config.mysqlUrl),
        check: () => store.checkTables(requiredTables(o.projections)),
      },
      {
        name: 'kafka',
        address: brokers,
        check: () =>
          withAdmin(kafka, async (admin) => {
            await createTopicsAndWait(admin, [{ topic: config.dltTopic, numPartitions: 1 }]);
          }),
      },
      {
        // Subscribing to a topic that does not exist fails the consumer: wait until the relay
        // (which creates them) has run once.
        name: 'topics',
        address: `${topics.join(',')} on ${brokers}`,
        check: () =>
          withAdmin(kafka, async (admin) => {
            const have = new Set(await admin.listTopics());
            const missing = topics.filter((t) => !have.has(t));
            if (missing.length > 0) {
              throw new Error(
                `${missing.join(', ')} ${missing.length === 1 ? 'does' : 'do'} not exist yet (the relay creates the topics)`,
              );
            }
            await waitForLeaders(admin, topics, 10_000);
          }),
      },
    ]);
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    applier = new Applier({
      store,
      codec: new EventCodec(catalog, registry),
      catalog,
      projections: o.projections,
      deadLetters: new KafkaDeadLetterPublisher(producer, config.dltTopic),
      group: config.groupId,
    });
    consumer = kafka.consumer({
      groupId: config.groupId,
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: config.heartbeatIntervalMs,
      maxBytesPerPartition: 4 * 1024 * 1024,
    });
  } catch (e) {
    // Stopped while waiting is a clean end, not a failure.
    if (isPipelineError(e, 'stopped')) transition('stopped');
    else transition('failed', { err: e });
    await cleanup();
    throw e;
  }
  const c = consumer;

  /**
   * Each assignment (the first join and every rebalance) starts from MySQL's offsets: they are
   * loaded and sought to for every assigned partition MySQL has one for, before a batch of that
   * assignment is applied. Seeking there (not only when a record arrives) is what makes a partition
   * whose Kafka offset is ahead (MySQL restored from a backup) re-apply with no new record; the
   * others keep Kafka's committed offset (or the earliest). kafkajs can only seek once `run()`
   * started, and applies a seek at its next fetch: a batch fetched before is stale, and dropped.
   */
  type Offsets = Map<string, string | null>;
  let assignment: { ready: Promise<Offsets | undefined>; offsets?: Offsets } = {
    ready: Promise.resolve(new Map()),
  };
  let generation = 0;
  const loadOffsets = async (
    partitions: Readonly<Record<string, readonly number[]>>,
  ): Promise<Offsets | undefined> => {
    const next: Offsets = new Map();
    for (const [topic, assigned] of Object.entries(partitions)) {
      let stored: Map<number, string> | undefined;
      for (let attempt = 1; stored === undefined; attempt++) {
        try {
          stored = await store.load(config.groupId, topic);
        } catch (e) {
          const err = classifyError(e);
          if (!err.retriable) throw err;
          if (aborted()) return undefined;
          log.warn(
            { topic, attempt, err: err.message },
            "loading MySQL's offsets failed, retrying",
          );
          await sleep(backoffDelay(attempt, config.retry), abort.signal);
        }
      }
      for (const partition of assigned)
        next.set(`${topic}:${partition}`, stored.get(partition) ?? null);
    }
    return next;
  };
  c.on(c.events.GROUP_JOIN, (ev) => {
    joined = true;
    brokerSeenAt = Date.now();
    const partitions = ev.payload.memberAssignment;
    log.info({ assignment: partitions }, 'partitions assigned');
    const current = ++generation;
    const a: typeof assignment = { ready: loadOffsets(partitions) };
    assignment = a;
    a.ready = a.ready.then((offsets) => {
      // A newer assignment seeks for itself.
      if (!offsets || current !== generation) return offsets;
      const from: Record<string, string> = {};
      for (const [topic, assigned] of Object.entries(partitions)) {
        for (const partition of assigned) {
          const offset = offsets.get(`${topic}:${partition}`);
          if (offset == null) continue;
          c.seek({ topic, partition, offset });
          from[`${topic}:${partition}`] = offset;
        }
      }
      log.info({ offsets: from }, 'starting from the offsets stored in MySQL');
      a.offsets = offsets;
      return offsets;
    });
    a.ready.catch(fail);
  });

  /** MySQL's offsets of the current assignment, heartbeating while they load (MySQL may be down);
   * none when the sink stops or the group rebalanced meanwhile (the batch is not ours to apply). */
  const assignedOffsets = async (p: EachBatchPayload): Promise<Offsets | undefined> => {
    const a = assignment;
    if (a.offsets) return a.offsets;
    for (;;) {
      const got = await Promise.race([
        a.ready.then((offsets) => ({ offsets })),
        sleep(config.heartbeatIntervalMs, abort.signal).then(() => undefined),
      ]);
      if (a !== assignment || aborted()) return undefined;
      if (got) return got.offsets;
      await p.heartbeat();
    }
  };

  const fail = (e: unknown): void => {
    if (state === 'failed' || state === 'stopped') return;
    transition('failed', { err: e });
    abort.abort();
    void (async () => {
      await c.stop().catch(() => undefined);
      await cleanup();
      rejectDone(e);
    })();
  };

  /** End-to-end latency and one debug line per event (with its trace id) once its batch committed. */
  const observeCommitted = (records: readonly ReturnType<typeof rawRecord>[]): void => {
    const now = Date.now();
    for (const r of records) {
      const occurred = Date.parse(r.headers[HEADERS.occurredAt] ?? '');
      if (!Number.isNaN(occurred)) metrics.endToEnd.observe(Math.max(0, now - occurred) / 1000);
      if (log.isLevelEnabled('debug')) {
        const traceId = r.headers[HEADERS.traceparent]?.split('-')[1];
        log.debug(
          {
            eventId: r.headers[HEADERS.eventId],
            aggregateId: r.headers[HEADERS.aggregateId],
            version: r.headers[HEADERS.version],
            topic: r.topic,
            partition: r.partition,
            offset: r.offset,
            ...(traceId ? { trace_id: traceId } : {}),
          },
          'event committed',
        );
      }
    }
  };

  const applyWithRetry = async (
    p: EachBatchPayload,
    records: ReturnType<typeof rawRecord>[],
  ): Promise<boolean> => {
    for (let attempt = 1; ; attempt++) {
      if (abort.signal.aborted || !p.isRunning() || p.isStale()) return false;
      const started = process.hrtime.bigint();
      // One span per transaction, linked to each event's trace (W3C headers from the command), and
      // a child of that trace when all its events come from one. A no-op unless the application
      // registers an OpenTelemetry SDK and propagator.
      const links = traceLinks(records);
      const span = tracer.startSpan(
        'cqrs-sync sink apply',
        {
          kind: SpanKind.CONSUMER,
          links,
          attributes: {
            'messaging.system': 'kafka',
            'messaging.destination.name': records[0]?.topic ?? '',
            'messaging.kafka.destination.partition': records[0]?.partition ?? -1,
            'messaging.batch.message_count': records.length,
            'cqrs_sync.attempt': attempt,
          },
        },
        parentOf(links),
      );
      try {
        const got = await applier.applyBatch(records).finally(() => {
          span.end();
        });
        retryingSince = undefined;
        metrics.batchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
        metrics.record(got);
        add(counts, got);
        observeCommitted(records);
        if (got.dead_lettered > 0)
          log.warn(
            { ...where(records), deadLettered: got.dead_lettered },
            'events dead-lettered, aggregates parked',
          );
        return true;
      } catch (e) {
        const err = classifyError(e, where(records));
        span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
        if (!err.retriable) throw err;
        metrics.retries.inc();
        retryingSince ??= Date.now();
        const delay = backoffDelay(attempt, config.retry);
        log.warn(
          { ...where(records), attempt, delayMs: delay, err: err.message },
          'batch failed, retrying',
        );
        // Back off while heartbeating: the partition stays ours, nothing is committed or skipped.
        const until = Date.now() + delay;
        while (Date.now() < until && !aborted()) {
          await sleep(Math.min(config.heartbeatIntervalMs, until - Date.now()), abort.signal);
          await p.heartbeat();
        }
      }
    }
  };

  const eachBatch = async (p: EachBatchPayload): Promise<void> => {
    const { topic, partition } = p.batch;
    const tp = `${topic}:${partition}`;
    try {
      const stored = await assignedOffsets(p);
      // Stale: a seek to MySQL's offset is pending, and kafkajs fetches again from there.
      if (!stored || p.isStale()) return;
      const next = stored.get(tp) ?? null;
      let messages = p.batch.messages;
      if (next !== null) {
        // Below MySQL's offset: applied already. Above it (compaction, retention): gone from Kafka.
        const from = BigInt(next);
        messages = messages.filter((m) => BigInt(m.offset) >= from);
      }
      for (let i = 0; i < messages.length; i += config.batchSize) {
        const chunk = messages.slice(i, i + config.batchSize);
        const last = chunk[chunk.length - 1];
        if (!last) break;
        const ok = await applyWithRetry(
          p,
          chunk.map((m) => rawRecord(topic, partition, m)),
        );
        if (!ok) return;
        const after = String(BigInt(last.offset) + 1n);
        stored.set(tp, after);
        p.resolveOffset(last.offset);
        const labels = { topic, partition: String(partition) };
        metrics.lastOffset.set(labels, Number(last.offset));
        metrics.lag.set(labels, Math.max(0, Number(BigInt(p.batch.highWatermark) - BigInt(after))));
        await c.commitOffsets([{ topic, partition, offset: after }]).catch((e: unknown) => {
          log.debug({ err: e, topic, partition }, 'kafka offset commit failed (MySQL has it)');
        });
        await p.heartbeat();
      }
    } catch (e) {
      if (isRebalance(e)) throw e;
      if (isPipelineError(e) && e.retriable) throw e;
      fail(e);
    }
  };

  try {
    await c.connect();
    for (const topic of topics) await c.subscribe({ topic, fromBeginning: true });
    c.on(c.events.CRASH, (ev) => {
      // A restart rejoins the group (GROUP_JOIN): not ready until then.
      joined = false;
      if (!ev.payload.restart) fail(ev.payload.error);
    });
    for (const event of [c.events.FETCH, c.events.HEARTBEAT]) {
      c.on(event, () => {
        brokerSeenAt = Date.now();
      });
    }
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: config.partitionsConcurrently,
      eachBatch,
    });
  } catch (e) {
    transition('failed', { err: e });
    await cleanup();
    throw e;
  }
  if (config.gapTimeoutMs >= 0) {
    gapTimer = setInterval(
      () => {
        if (gapCheck) return;
        gapCheck = applier
          .expireGaps(config.gapTimeoutMs)
          .then(
            (n) => {
              if (n > 0) {
                counts.dead_lettered += n;
                metrics.events.inc({ outcome: 'dead_lettered' }, n);
                log.warn({ aggregates: n }, 'version gaps timed out: dead-lettered and parked');
              }
            },
            (e: unknown) => {
              log.warn({ err: e }, 'gap check failed');
            },
          )
          .finally(() => {
            gapCheck = undefined;
          });
      },
      Math.min(config.gapCheckIntervalMs, Math.max(100, config.gapTimeoutMs)),
    );
    gapTimer.unref();
  }
  transition('running', { topics });
  // A fetch ends within its wait (5 s) and heartbeats go every heartbeatInterval: this much silence
  // means the broker is unreachable (the consumer is retrying or reconnecting), not that it is idle.
  const brokerSilentMs = Math.max(15_000, 3 * config.heartbeatIntervalMs);
  const consumerCheck = (): { ok: boolean; detail: string } => {
    if (!joined) return { ok: false, detail: 'not in the group (joining or reconnecting)' };
    const silent = Date.now() - brokerSeenAt;
    return silent < brokerSilentMs
      ? { ok: true, detail: 'joined' }
      : {
          ok: false,
          detail: `no fetch or heartbeat answered for ${silent} ms: broker unreachable`,
        };
  };
  runningChecks = async () => ({
    state: { ok: state === 'running', detail: state },
    consumer: consumerCheck(),
    mysql: await store.ping().then(
      () => ({ ok: true }),
      (e: unknown) => ({ ok: false, detail: classifyError(e).message }),
    ),
    applying: retryingSince
      ? { ok: false, detail: `retrying a batch for ${Date.now() - retryingSince} ms` }
      : { ok: true },
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (state === 'stopped' || state === 'failed') {
        await done.catch(() => undefined);
        return;
      }
      transition('draining');
      abort.abort();
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'timeout'>((r) => {
        timer = setTimeout(() => {
          r('timeout');
        }, config.stopGraceMs);
      });
      const drained = await Promise.race([c.stop().then(() => 'ok' as const), grace]);
      clearTimeout(timer);
      if (drained === 'timeout')
        log.warn({ graceMs: config.stopGraceMs }, 'batch did not drain in time; disconnecting');
      await cleanup();
      transition('stopped', { counts });
      resolveDone();
    })();
    return stopping;
  };

  return {
    get state() {
      return state;
    },
    counts,
    metrics: metrics.registry,
    get opsUrl() {
      return ops?.url;
    },
    applier,
    done,
    stop,
  };
}

const tracer = trace.getTracer('cqrs-sync-sink');

function traceLinks(records: readonly { headers: Readonly<Record<string, string>> }[]): Link[] {
  const links: Link[] = [];
  for (const r of records) {
    if (!r.headers[HEADERS.traceparent]) continue;
    const ctx = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, r.headers));
    if (ctx) links.push({ context: ctx });
  }
  return links;
}

/** The one trace all linked events share, as the apply span's parent; none when they differ. */
function parentOf(links: readonly Link[]): Context | undefined {
  const first = links[0]?.context;
  if (!first || links.some((l) => l.context.traceId !== first.traceId)) return undefined;
  return trace.setSpanContext(ROOT_CONTEXT, first);
}

function where(records: readonly { topic: string; partition: number; offset: string }[]) {
  return {
    topic: records[0]?.topic,
    partition: records[0]?.partition,
    offset: records[0]?.offset,
    count: records.length,
  };
}

function isRebalance(e: unknown): boolean {
  const t = (e as { type?: unknown; name?: unknown }).type;
  return (
    t === 'REBALANCE_IN_PROGRESS' ||
    t === 'NOT_COORDINATOR_FOR_GROUP' ||
    t === 'ILLEGAL_GENERATION' ||
    t === 'UNKNOWN_MEMBER_ID'
  );
}
