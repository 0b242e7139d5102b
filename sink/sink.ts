/**
 * The sink: the consumer group that applies events to MySQL. Each assignment starts fetching at
 * the offsets stored in MySQL (the truth; Kafka's committed offset only where MySQL has none). Per
 * partition batch: the records from MySQL's offset on are applied in transactions of up to
 * `batchSize` events, then the Kafka offset is committed. Retriable failures back off with jitter
 * and retry the same batch, heartbeating, until they succeed or the sink is stopped: nothing is
 * skipped. `Sink` runs over the parts `startSink` builds from the config (as the relay's `Relay`
 * over `startRelay`'s); its lifecycle is ops/lifecycle.ts's.
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
  type Span,
} from '@opentelemetry/api';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Catalog } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import { ConfluentRegistry, type RegistryPort } from '../schemas/registry.js';
import { Applier, add, emptyCounts, type OutcomeCounts } from './apply.js';
import { backoffDelay, retryBackoff, sleep } from '../ops/backoff.js';
import { loadSinkConfig, type SinkConfig } from './config.js';
import { KafkaDeadLetterPublisher } from './dead-letter.js';
import { rawRecord } from './decode.js';
import { SinkMetrics } from './metrics.js';
import { classifyError } from './mysql-errors.js';
import { MysqlStore } from './mysql-store.js';
import type { Decoded } from './planner.js';
import type { Projection } from './projection.js';
import { checkProjections, requiredTables } from './validate.js';
import type { OpsServer, ReadinessCheck } from '../ops/http.js';
import { createKafkaClient, kafkaClientOptions } from '../ops/kafka.js';
import { Lifecycle, type ProcessState } from '../ops/lifecycle.js';
import { startOpsEndpoint } from '../ops/process-runner.js';
import { StartupWait, addressOf } from '../ops/startup.js';
import { createTopicsAndWait, waitForLeaders, withAdmin } from '../ops/topics.js';
import { HEADERS } from '../schemas/envelope.js';
import { createLogger } from '../ops/logger.js';

/** The one lifecycle state union of both processes (ops/lifecycle.ts). */
export type SinkState = ProcessState;

export interface StartSinkOptions {
  readonly catalog: Catalog;
  readonly projections: readonly Projection[];
  /** Default: `loadSinkConfig()` (the environment). */
  readonly config?: SinkConfig;
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

/** The sink's kafkajs client (ops/kafka.ts). */
export function createKafka(config: SinkConfig, logger: Logger): Kafka {
  return createKafkaClient(kafkaClientOptions(config, config.clientId, logger));
}

/** Starts a sink with the MySQL and Kafka adapters. Resolves once it runs; until MySQL, the broker
 * and the topics answer it waits (ops/startup.ts), serving `/readyz` as not ready. */
export async function startSink(o: StartSinkOptions): Promise<SinkHandle> {
  const config = o.config ?? loadSinkConfig();
  const logger = o.logger ?? createLogger(config.logLevel);
  // Before anything is created: a projection that cannot work is a programming error.
  checkProjections(o.catalog, o.projections);
  const store = new MysqlStore({
    connection: o.pool ?? o.mysqlUrl ?? config.mysqlUrl,
    poolSize: config.poolSize,
    lockWaitTimeoutMs: config.lockWaitTimeoutMs,
    ...(o.physical ? { physical: o.physical } : {}),
  });
  const sink = new Sink({
    catalog: o.catalog,
    projections: o.projections,
    config,
    logger,
    store,
    // The base logger, so kafkajs lines carry one `component` key, not two.
    kafka: o.kafka ?? createKafka(config, logger),
    registry: o.registry ?? new ConfluentRegistry(config.schemaRegistryUrl),
    mysqlAddress: addressOf(o.mysqlUrl ?? config.mysqlUrl),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  await sink.start();
  return sink;
}

/** What a sink runs over; `startSink` builds them from the config. */
export interface SinkParts {
  readonly catalog: Catalog;
  readonly projections: readonly Projection[];
  readonly config: SinkConfig;
  readonly logger: Logger;
  /** Owned: closed with the sink (its pool, when one was passed in, is the caller's). */
  readonly store: MysqlStore;
  /** The sink creates (and closes) its producer and consumer on it. */
  readonly kafka: Kafka;
  readonly registry: RegistryPort;
  /** MySQL's address, without credentials, for the start-up wait's log lines. */
  readonly mysqlAddress: string;
  /** Aborting ends the start-up wait. */
  readonly signal?: AbortSignal;
}

type Offsets = Map<string, string | null>;
type Records = ReturnType<typeof rawRecord>[];
/** A chunk converted to records and decoded, ready for its transaction. */
interface Prepared {
  readonly records: Records;
  readonly decoded: Decoded[];
}
/** Where a chunk starts, for log lines and errors. */
type Where = {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string | undefined;
  readonly count: number;
};

export class Sink implements SinkHandle {
  readonly counts = emptyCounts();
  readonly metrics: Registry;
  readonly done: Promise<void>;
  private readonly m: SinkMetrics;
  private readonly log: Logger;
  private readonly lifecycle: Lifecycle;
  private readonly topics: string[];
  private readonly abort = new AbortController();
  private readonly startup: StartupWait;
  private applierOf: Applier | undefined;
  private producer: Producer | undefined;
  private consumer: Consumer | undefined;
  private gapTimer: NodeJS.Timeout | undefined;
  /**
   * Kafka's committed offsets are only a hint (MySQL holds the truth, and every assignment starts
   * from MySQL's): the newest applied offset of each partition waits here and is committed every
   * `kafkaCommitIntervalMs` and at stop, off the batches' path. Committing after every batch cost
   * each partition a broker round trip before kafkajs fetched again.
   */
  private readonly kafkaHints = new Map<
    string,
    { topic: string; partition: number; offset: string }
  >();
  private kafkaHintTimer: NodeJS.Timeout | undefined;
  /** The commits of hints, in order; never rejects. */
  private kafkaHintCommits: Promise<void> = Promise.resolve();
  /** The gap check under way: stop waits for it, so it never logs or queries after the sink stopped. */
  private gapCheck: Promise<void> | undefined;
  private ops: OpsServer | undefined;
  /** Set once running: `/readyz` reports the running checks from then on, the start-up before. */
  private checksRunning = false;
  private joined = false;
  /** When the broker last answered the consumer (a fetch or a heartbeat): readiness goes by it. */
  private brokerSeenAt = 0;
  /** Set while a batch is being retried: readiness reports it (MySQL down, locks…). */
  private retryingSince: number | undefined;
  /**
   * Each assignment (the first join and every rebalance) starts from MySQL's offsets: they are
   * loaded and sought to for every assigned partition MySQL has one for, before a batch of that
   * assignment is applied. Seeking there (not only when a record arrives) is what makes a partition
   * whose Kafka offset is ahead (MySQL restored from a backup) re-apply with no new record; the
   * others keep Kafka's committed offset (or the earliest). kafkajs can only seek once `run()`
   * started, and applies a seek at its next fetch: a batch fetched before is stale, and dropped.
   */
  private assignment: { ready: Promise<Offsets | undefined>; offsets?: Offsets } = {
    ready: Promise.resolve(new Map()),
  };
  private generation = 0;

  constructor(private readonly parts: SinkParts) {
    const { config, catalog, store } = parts;
    this.log = parts.logger.child({ component: 'sink' });
    this.topics = config.topics.length > 0 ? [...config.topics] : catalog.topics();
    this.m = new SinkMetrics({
      parked: () => store.countParked(),
      deadLetters: () => store.countDeadLetters(),
      lastVerify: () => store.lastVerifyRun(),
    });
    this.metrics = this.m.registry;
    this.lifecycle = new Lifecycle({
      log: this.log,
      graceMs: config.stopGraceMs,
      closeTimeoutMs: config.stopForceMs,
      fields: { group: config.groupId },
      drain: async () => {
        this.abort.abort();
        await this.consumer?.stop();
        if (this.kafkaHintTimer) clearInterval(this.kafkaHintTimer);
        await this.commitKafkaHints();
      },
      close: () => this.cleanup(),
    });
    this.done = this.lifecycle.done;
    // Serving /readyz while it waits: not ready, saying for what; then the running checks.
    this.startup = new StartupWait({
      logger: this.log,
      timeoutMs: config.startupTimeoutMs,
      setting: 'SINK_STARTUP_TIMEOUT_MS',
      backoff: retryBackoff(config),
      ...(parts.signal ? { signal: parts.signal } : {}),
    });
  }

  get state(): SinkState {
    return this.lifecycle.state;
  }

  get opsUrl(): string | undefined {
    return this.ops?.url;
  }

  get applier(): Applier {
    if (!this.applierOf) throw new Error('the sink has not started');
    return this.applierOf;
  }

  /** Waits for MySQL, the broker and the topics, joins the group and runs. Resolves once running. */
  async start(): Promise<void> {
    const { config, kafka, store, catalog, projections } = this.parts;
    this.ops = await startOpsEndpoint({
      port: config.opsPort,
      host: config.opsHost,
      log: this.log,
      registries: [this.m.registry],
      liveness: () => this.state !== 'failed',
      readiness: () => this.readiness(),
    });
    const topics = this.topics;
    let c: Consumer;
    try {
      const brokers = config.kafkaBrokers.join(',');
      await this.startup.waitFor([
        {
          name: 'mysql',
          address: this.parts.mysqlAddress,
          check: () => store.checkTables(requiredTables(projections)),
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
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      this.producer = producer;
      await producer.connect();
      const applier = new Applier({
        store,
        codec: new EventCodec(catalog, this.parts.registry),
        catalog,
        projections,
        deadLetters: new KafkaDeadLetterPublisher(producer, config.dltTopic),
        group: config.groupId,
      });
      c = kafka.consumer({
        groupId: config.groupId,
        sessionTimeout: config.sessionTimeoutMs,
        heartbeatInterval: config.heartbeatIntervalMs,
        maxBytesPerPartition: 4 * 1024 * 1024,
      });
      this.consumer = c;
      this.applierOf = applier;
    } catch (e) {
      // Stopped while waiting is a clean end, not a failure.
      if (isPipelineError(e, 'stopped')) await this.lifecycle.stop();
      else await this.lifecycle.fail(e);
      throw e;
    }

    c.on(c.events.GROUP_JOIN, (ev) => {
      this.assigned(c, ev.payload.memberAssignment);
    });
    try {
      await c.connect();
      for (const topic of topics) await c.subscribe({ topic, fromBeginning: true });
      c.on(c.events.CRASH, (ev) => {
        // A restart rejoins the group (GROUP_JOIN): not ready until then.
        this.joined = false;
        if (!ev.payload.restart) this.fail(ev.payload.error);
      });
      // A broker's answer to any request (fetch, heartbeat, metadata) is what shows it reachable.
      // Not FETCH: kafkajs emits it for fetches that reached no broker too (a fetcher with no
      // partitions sleeps maxWaitTime and "fetches" nothing; a closed connection is swallowed), so
      // with the broker down it kept readiness green.
      c.on(c.events.REQUEST, () => {
        this.brokerSeenAt = Date.now();
      });
      await c.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: config.partitionsConcurrently,
        eachBatch: (p) => this.eachBatch(p),
      });
    } catch (e) {
      await this.lifecycle.fail(e);
      throw e;
    }
    this.startGapChecks();
    this.kafkaHintTimer = setInterval(
      () => void this.commitKafkaHints(),
      config.kafkaCommitIntervalMs,
    );
    this.kafkaHintTimer.unref();
    this.checksRunning = true;
    this.lifecycle.running({ topics });
  }

  /** Idempotent (ops/lifecycle.ts): drains the batch in flight for `stopGraceMs`, then closes. */
  stop(): Promise<void> {
    return this.lifecycle.stop(() => ({ counts: this.counts }));
  }

  private aborted(): boolean {
    return this.abort.signal.aborted;
  }

  private fail(e: unknown): void {
    this.abort.abort();
    void this.lifecycle.fail(e, () => this.consumer?.stop() ?? Promise.resolve());
  }

  private async cleanup(): Promise<void> {
    await this.ops?.close().catch(() => undefined);
    if (this.gapTimer) clearInterval(this.gapTimer);
    if (this.kafkaHintTimer) clearInterval(this.kafkaHintTimer);
    await this.kafkaHintCommits;
    await this.gapCheck?.catch(() => undefined);
    await this.consumer?.disconnect().catch((e: unknown) => {
      this.log.warn({ err: e }, 'consumer disconnect failed');
    });
    await this.producer?.disconnect().catch((e: unknown) => {
      this.log.warn({ err: e }, 'producer disconnect failed');
    });
    await this.parts.store.close().catch((e: unknown) => {
      this.log.warn({ err: e }, 'mysql pool close failed');
    });
  }

  private async readiness(): Promise<Record<string, ReadinessCheck>> {
    if (!this.checksRunning) {
      return { state: { ok: false, detail: this.state }, startup: this.startup.readiness() };
    }
    return {
      state: { ok: this.state === 'running', detail: this.state },
      consumer: this.consumerCheck(),
      mysql: await this.parts.store.ping().then(
        () => ({ ok: true }),
        (e: unknown) => ({ ok: false, detail: classifyError(e).message }),
      ),
      applying: this.retryingSince
        ? { ok: false, detail: `retrying a batch for ${Date.now() - this.retryingSince} ms` }
        : { ok: true },
    };
  }

  private consumerCheck(): ReadinessCheck {
    // A fetch is answered within its wait (5 s) and heartbeats go every heartbeatInterval: this much
    // silence means the broker is unreachable (the consumer is retrying or reconnecting), not idle.
    const brokerSilentMs = Math.max(15_000, 3 * this.parts.config.heartbeatIntervalMs);
    if (!this.joined) return { ok: false, detail: 'not in the group (joining or reconnecting)' };
    const silent = Date.now() - this.brokerSeenAt;
    return silent < brokerSilentMs
      ? { ok: true, detail: 'joined' }
      : {
          ok: false,
          detail: `no fetch or heartbeat answered for ${silent} ms: broker unreachable`,
        };
  }

  private startGapChecks(): void {
    const { config } = this.parts;
    if (config.gapTimeoutMs < 0) return;
    const applier = this.applier;
    this.gapTimer = setInterval(
      () => {
        if (this.gapCheck) return;
        this.gapCheck = applier
          .expireGaps(config.gapTimeoutMs)
          .then(
            (n) => {
              if (n > 0) {
                this.counts.dead_lettered += n;
                this.m.events.inc({ outcome: 'dead_lettered' }, n);
                this.log.warn(
                  { aggregates: n },
                  'version gaps timed out: dead-lettered and parked',
                );
              }
            },
            (e: unknown) => {
              this.log.warn({ err: e }, 'gap check failed');
            },
          )
          .finally(() => {
            this.gapCheck = undefined;
          });
      },
      Math.min(config.gapCheckIntervalMs, Math.max(100, config.gapTimeoutMs)),
    );
    this.gapTimer.unref();
  }

  /** A new assignment: MySQL's offsets are loaded and sought to (see `assignment`). */
  private assigned(c: Consumer, partitions: Readonly<Record<string, readonly number[]>>): void {
    this.joined = true;
    this.brokerSeenAt = Date.now();
    this.log.info({ assignment: partitions }, 'partitions assigned');
    const current = ++this.generation;
    const mine = new Set(
      Object.entries(partitions).flatMap(([topic, ps]) => ps.map((p) => `${topic}:${p}`)),
    );
    for (const tp of this.kafkaHints.keys()) if (!mine.has(tp)) this.kafkaHints.delete(tp);
    const a: typeof this.assignment = { ready: this.loadOffsets(partitions) };
    this.assignment = a;
    a.ready = a.ready.then((offsets) => {
      // A newer assignment seeks for itself.
      if (!offsets || current !== this.generation) return offsets;
      const from: Record<string, string> = {};
      for (const [topic, assigned] of Object.entries(partitions)) {
        for (const partition of assigned) {
          const offset = offsets.get(`${topic}:${partition}`);
          if (offset == null) continue;
          c.seek({ topic, partition, offset });
          from[`${topic}:${partition}`] = offset;
        }
      }
      this.log.info({ offsets: from }, 'starting from the offsets stored in MySQL');
      a.offsets = offsets;
      return offsets;
    });
    a.ready.catch((e: unknown) => {
      this.fail(e);
    });
  }

  private async loadOffsets(
    partitions: Readonly<Record<string, readonly number[]>>,
  ): Promise<Offsets | undefined> {
    const { config, store } = this.parts;
    const next: Offsets = new Map();
    for (const [topic, assigned] of Object.entries(partitions)) {
      let stored: Map<number, string> | undefined;
      for (let attempt = 1; stored === undefined; attempt++) {
        try {
          stored = await store.load(config.groupId, topic);
        } catch (e) {
          const err = classifyError(e);
          if (!err.retriable) throw err;
          if (this.aborted()) return undefined;
          this.log.warn(
            { topic, attempt, err: err.message },
            "loading MySQL's offsets failed, retrying",
          );
          await sleep(backoffDelay(attempt, retryBackoff(config)), this.abort.signal);
        }
      }
      for (const partition of assigned)
        next.set(`${topic}:${partition}`, stored.get(partition) ?? null);
    }
    return next;
  }

  /** MySQL's offsets of the current assignment, heartbeating while they load (MySQL may be down);
   * none when the sink stops or the group rebalanced meanwhile (the batch is not ours to apply). */
  private async assignedOffsets(p: EachBatchPayload): Promise<Offsets | undefined> {
    const a = this.assignment;
    if (a.offsets) return a.offsets;
    for (;;) {
      const got = await Promise.race([
        a.ready.then((offsets) => ({ offsets })),
        sleep(this.parts.config.heartbeatIntervalMs, this.abort.signal).then(() => undefined),
      ]);
      if (a !== this.assignment || this.aborted()) return undefined;
      if (got) return got.offsets;
      await p.heartbeat();
    }
  }

  /** End-to-end latency and one debug line per event (with its trace id) once its batch committed. */
  private observeCommitted(records: Readonly<Records>): void {
    const now = Date.now();
    for (const r of records) {
      const occurred = Date.parse(r.headers[HEADERS.occurredAt] ?? '');
      if (!Number.isNaN(occurred)) this.m.endToEnd.observe(Math.max(0, now - occurred) / 1000);
      if (this.log.isLevelEnabled('debug')) {
        const traceId = r.headers[HEADERS.traceparent]?.split('-')[1];
        this.log.debug(
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
  }

  /**
   * Converts and decodes a chunk (`Applier.decodeAll`), yielding every `DECODE_SLICE` records so
   * that, started while the previous chunk's transaction is in flight, it runs in that
   * transaction's waits for MariaDB instead of delaying its next statement.
   */
  private async prepare(
    topic: string,
    partition: number,
    chunk: readonly KafkaMessage[],
  ): Promise<Prepared> {
    await yieldToIo();
    const records: Records = [];
    for (const m of chunk) {
      if (records.length > 0 && records.length % DECODE_SLICE === 0) await yieldToIo();
      records.push(rawRecord(topic, partition, m));
    }
    return { records, decoded: await this.applier.decodeAll(records, DECODE_SLICE) };
  }

  /**
   * Applies one chunk, retrying it until it commits or the sink stops (false). `ahead` is its
   * decode started earlier; a decode that failed (the registry unreachable) is retried with the
   * transaction, through `again`.
   */
  private async applyWithRetry(
    p: EachBatchPayload,
    ahead: Promise<Prepared>,
    again: () => Promise<Prepared>,
    at: Where,
  ): Promise<boolean> {
    const { config } = this.parts;
    const applier = this.applier;
    let pending: Promise<Prepared> | undefined = ahead;
    let prepared: Prepared | undefined;
    for (let attempt = 1; ; attempt++) {
      if (this.aborted() || !p.isRunning() || p.isStale()) return false;
      const started = process.hrtime.bigint();
      let span: Span | undefined;
      try {
        if (!prepared) {
          const next = pending ?? again();
          pending = undefined;
          prepared = await next;
        }
        const { records, decoded } = prepared;
        // One span per transaction, linked to each event's trace (W3C headers from the command),
        // and a child of that trace when all its events come from one. A no-op unless the
        // application registers an OpenTelemetry SDK and propagator.
        const links = traceLinks(records);
        const s = tracer.startSpan(
          'cqrs-sync sink apply',
          {
            kind: SpanKind.CONSUMER,
            links,
            attributes: {
              'messaging.system': 'kafka',
              'messaging.destination.name': at.topic,
              'messaging.kafka.destination.partition': at.partition,
              'messaging.batch.message_count': records.length,
              'cqrs_sync.attempt': attempt,
            },
          },
          parentOf(links),
        );
        span = s;
        const got = await applier.applyDecoded(decoded).finally(() => {
          s.end();
        });
        this.retryingSince = undefined;
        this.m.batchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
        this.m.record(got);
        add(this.counts, got);
        this.observeCommitted(records);
        if (got.dead_lettered > 0)
          this.log.warn(
            { ...at, deadLettered: got.dead_lettered },
            'events dead-lettered, aggregates parked',
          );
        return true;
      } catch (e) {
        const err = classifyError(e, at);
        span?.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
        if (!err.retriable) throw err;
        this.m.retries.inc();
        this.retryingSince ??= Date.now();
        const delay = backoffDelay(attempt, retryBackoff(config));
        this.log.warn(
          { ...at, attempt, delayMs: delay, err: err.message },
          'batch failed, retrying',
        );
        // Back off while heartbeating: the partition stays ours, nothing is committed or skipped.
        const until = Date.now() + delay;
        while (Date.now() < until && !this.aborted()) {
          await sleep(Math.min(config.heartbeatIntervalMs, until - Date.now()), this.abort.signal);
          await p.heartbeat();
        }
      }
    }
  }

  private async eachBatch(p: EachBatchPayload): Promise<void> {
    const { config } = this.parts;
    const { topic, partition } = p.batch;
    const tp = `${topic}:${partition}`;
    try {
      const stored = await this.assignedOffsets(p);
      // Stale: a seek to MySQL's offset is pending, and kafkajs fetches again from there.
      if (!stored || p.isStale()) return;
      const next = stored.get(tp) ?? null;
      let messages = p.batch.messages;
      if (next !== null) {
        // Below MySQL's offset: applied already. Above it (compaction, retention): gone from Kafka.
        const from = BigInt(next);
        messages = messages.filter((m) => BigInt(m.offset) >= from);
      }
      const chunks: KafkaMessage[][] = [];
      for (let i = 0; i < messages.length; i += config.batchSize)
        chunks.push(messages.slice(i, i + config.batchSize));
      const prepare = (chunk: readonly KafkaMessage[]): Promise<Prepared> => {
        const ready = this.prepare(topic, partition, chunk);
        // A failed decode (the registry unreachable) is retried when its chunk's turn comes; a
        // chunk abandoned first (stop, rebalance) never awaits it: not an unhandled rejection.
        ready.catch(() => undefined);
        return ready;
      };
      let ahead = chunks[0] ? prepare(chunks[0]) : undefined;
      for (let i = 0; i < chunks.length; i++) {
        const chunk = chunks[i];
        const last = chunk?.[chunk.length - 1];
        if (!chunk || !last || !ahead) break;
        const applying = this.applyWithRetry(p, ahead, () => prepare(chunk), {
          topic,
          partition,
          offset: chunk[0]?.offset,
          count: chunk.length,
        });
        // Pipelining: the next chunk is decoded while this one's transaction is in flight, and
        // only decoded. Planning it reads what MySQL knows (seen event ids, aggregate versions
        // and statuses, held events), which this chunk's commit changes when both touch an
        // aggregate, so it is planned inside its own transaction, after this one committed: the
        // chunks of a partition still commit one at a time, in offset order, each with its
        // offset. A decode reads only the record and its writer schema, and writes nothing: a
        // chunk decoded ahead and then abandoned (stop, rebalance, a pending seek, a failure)
        // leaves nothing behind, and its records are fetched and applied again from MySQL's
        // offset.
        const following = chunks[i + 1];
        ahead = following ? prepare(following) : undefined;
        if (!(await applying)) return;
        const after = String(BigInt(last.offset) + 1n);
        stored.set(tp, after);
        p.resolveOffset(last.offset);
        const labels = { topic, partition: String(partition) };
        this.m.lastOffset.set(labels, Number(last.offset));
        this.m.lag.set(labels, Math.max(0, Number(BigInt(p.batch.highWatermark) - BigInt(after))));
        this.kafkaHints.set(tp, { topic, partition, offset: after });
        await p.heartbeat();
      }
    } catch (e) {
      if (isRebalance(e)) throw e;
      if (isPipelineError(e) && e.retriable) throw e;
      this.fail(e);
    }
  }

  /**
   * Commits the waiting hints (`kafkaHints`) in one request, after the commits before. Never
   * rejects: a failed commit costs nothing but a re-filtered fetch, and its hints wait for the next
   * one unless a newer offset or a rebalance replaced them.
   */
  private commitKafkaHints(): Promise<void> {
    this.kafkaHintCommits = this.kafkaHintCommits.then(async () => {
      const hints = [...this.kafkaHints.entries()];
      if (hints.length === 0 || !this.consumer) return;
      this.kafkaHints.clear();
      const generation = this.generation;
      await this.consumer.commitOffsets(hints.map(([, h]) => h)).catch((e: unknown) => {
        this.log.debug({ err: e }, 'kafka offset commit failed (MySQL has the offsets)');
        // After a rebalance the partitions may be another member's: its own commits replace these.
        if (generation !== this.generation) return;
        for (const [tp, h] of hints) if (!this.kafkaHints.has(tp)) this.kafkaHints.set(tp, h);
      });
    });
    return this.kafkaHintCommits;
  }
}

/** Records decoded per turn of the event loop when a chunk is decoded ahead. */
const DECODE_SLICE = 250;

/** After the I/O callbacks already due (setImmediate runs after the poll phase). */
const yieldToIo = (): Promise<void> =>
  new Promise((resolve) => {
    setImmediate(resolve);
  });

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

function isRebalance(e: unknown): boolean {
  const t = (e as { type?: unknown; name?: unknown }).type;
  return (
    t === 'REBALANCE_IN_PROGRESS' ||
    t === 'NOT_COORDINATOR_FOR_GROUP' ||
    t === 'ILLEGAL_GENERATION' ||
    t === 'UNKNOWN_MEMBER_ID'
  );
}
