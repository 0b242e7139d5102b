/**
 * `cqrs-sync status`: one screen an operator reads first. It asks the servers, not the processes,
 * so it answers while the relay or the sink is down; each section that cannot be read says why.
 */
import { MongoClient } from 'mongodb';
import { loadRelayConfig, relayCollections } from '../relay/config.js';
import { MongoLeaseStore, MongoOutboxSource } from '../relay/mongo-outbox.js';
import type { Catalog } from '../schemas/catalog.js';
import { loadSinkConfig } from '../sink/config.js';
import { MysqlStore } from '../sink/mysql-store.js';
import { createKafkaClient, kafkaClientOptions } from '../ops/kafka.js';
import { lastRun, type VerifyRun } from '../verify/runs.js';

type Section<T> = { ok: true; value: T } | { ok: false; error: string };

export interface RelayStatus {
  /** Where the outbox is: the aggregate documents of these collections (aggregate type -> name). */
  readonly database: string;
  readonly collections: Readonly<Record<string, string>>;
  readonly lease:
    { readonly owner: string; readonly token: number; readonly expiresInMs: number } | undefined;
  readonly backlog: number;
  readonly oldestPendingAgeMs: number | undefined;
  /** Aggregates held behind a failed entry (`Type/id`), waiting for `relay release`. */
  readonly held: readonly string[];
  readonly resumeTokenAgeMs: number | undefined;
  /** Set when the resume token document could not be read (e.g. its `at` is not a date). */
  readonly resumeTokenError?: string;
}

export interface PartitionLag {
  readonly topic: string;
  readonly partition: number;
  readonly end: number;
  /** The next offset to apply, stored in MySQL with the batch that applied the one before: where
   * the sink starts from (the truth). */
  readonly mysqlOffset: number | undefined;
  /** The group's committed offset in Kafka, written after MySQL's: only a hint. */
  readonly kafkaCommitted: number | undefined;
  /** Records after MySQL's offset; where MySQL has none, after Kafka's committed one (else all). */
  readonly lag: number;
  /** MySQL's and Kafka's offsets are not the same: a restored database, a Kafka commit that failed,
   * or (for a moment) a batch being applied. */
  readonly offsetsDiffer: boolean;
}

export interface SinkStatus {
  readonly group: string;
  readonly partitions: readonly PartitionLag[];
  readonly totalLag: number;
  /** How many partitions have `offsetsDiffer`. */
  readonly offsetsDiffer: number;
  /** Set when MySQL's offsets could not be read: lag is then from Kafka's committed offsets. */
  readonly mysqlOffsetsError?: string;
  /** Where copies of dead letters go; the count is `deadLetters`, read from MySQL. */
  readonly dltTopic: string;
}

export interface Status {
  readonly at: string;
  readonly relay: Section<RelayStatus>;
  readonly sink: Section<SinkStatus>;
  readonly parked: Section<number>;
  /** Held rows of kind `dead` in MySQL: the same count as `sink dlq list` and the demo. */
  readonly deadLetters: Section<number>;
  /** The last `cqrs-sync verify` run recorded in MySQL (undefined: none ran). Not counted in the
   * exit code: a database without sink migration 4 has no record of runs. */
  readonly lastVerify: Section<VerifyRun | undefined>;
}

const sinkTopics = (catalog: Catalog, configured: readonly string[]): string[] =>
  configured.length > 0 ? [...configured] : catalog.topics();

/** kafkajs's admin does not retry an offset fetch the group's coordinator refused as not (yet) its
 * own, which a fresh cluster answers while it creates its offsets topic: a retry helps. */
async function whileCoordinatorMoves<T>(read: () => Promise<T>, attempts = 10): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (e) {
      const type = (e as { type?: unknown }).type;
      const moving =
        type === 'NOT_COORDINATOR_FOR_GROUP' ||
        type === 'GROUP_COORDINATOR_NOT_AVAILABLE' ||
        type === 'GROUP_LOAD_IN_PROGRESS';
      if (!moving || attempt >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 300 * attempt));
    }
  }
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

async function section<T>(read: () => Promise<T>): Promise<Section<T>> {
  try {
    return { ok: true, value: await read() };
  } catch (e) {
    return { ok: false, error: message(e) };
  }
}

export async function readStatus(
  catalog: Catalog,
  env: Record<string, string | undefined>,
): Promise<Status> {
  const now = Date.now();
  const relay = section(async () => {
    const config = loadRelayConfig(env);
    const client = new MongoClient(config.mongodbUri, { serverSelectionTimeoutMS: 5000 });
    try {
      const db = client.db(config.database);
      const collections = relayCollections(
        catalog.aggregates.map((a) => a.type),
        config,
      );
      const source = new MongoOutboxSource(db, { collections, name: config.name });
      const [lease, backlog, tokenAt, held] = await Promise.all([
        new MongoLeaseStore(db, config.name).current(),
        source.backlog(),
        // One malformed document must not hide the rest of the screen.
        source.resumeTokenSavedAt().then(
          (at) => ({ at, error: undefined }),
          (e: unknown) => ({ at: undefined, error: message(e) }),
        ),
        source.heldAggregates(),
      ]);
      return {
        database: config.database,
        collections,
        lease: lease
          ? { owner: lease.owner, token: lease.token, expiresInMs: lease.expiresAt.getTime() - now }
          : undefined,
        backlog: backlog.pending,
        oldestPendingAgeMs: backlog.oldest ? now - backlog.oldest.getTime() : undefined,
        held: held.sort(),
        resumeTokenAgeMs: tokenAt.at ? now - tokenAt.at.getTime() : undefined,
        ...(tokenAt.error === undefined ? {} : { resumeTokenError: tokenAt.error }),
      };
    } finally {
      await client.close();
    }
  });
  // One MySQL pool for the sink's bookkeeping; each count and the offsets are their own section.
  const mysqlReads = (() => {
    // A bad environment rejects here, and each section says so.
    const opened = Promise.resolve().then(() => {
      const config = loadSinkConfig(env);
      return { config, store: new MysqlStore({ connection: config.mysqlUrl, poolSize: 1 }) };
    });
    const offsets = section(async () => {
      const { config, store } = await opened;
      const out = new Map<string, number>();
      for (const topic of sinkTopics(catalog, config.topics)) {
        for (const [p, next] of await store.load(config.groupId, topic)) {
          out.set(`${topic}:${p}`, Number(next));
        }
      }
      return out;
    });
    const parked = section(async () => (await opened).store.countParked());
    const dead = section(async () => (await opened).store.countDeadLetters());
    const verified = section(async () => lastRun((await opened).store.pool));
    const closed = Promise.allSettled([offsets, parked, dead, verified])
      .then(async () => (await opened).store.close())
      .catch(() => undefined);
    return { offsets, parked, dead, verified, closed };
  })();
  const sink = section(async () => {
    const config = loadSinkConfig(env);
    const kafka = createKafkaClient({
      ...kafkaClientOptions(config, 'cqrs-sync-status'),
      connectionTimeout: 3000,
      // A fresh cluster answers "not the coordinator" while it creates its offsets topic.
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 2000 },
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const topics = sinkTopics(catalog, config.topics);
      const existing = new Set(await admin.listTopics());
      const partitions: PartitionLag[] = [];
      const present = topics.filter((t) => existing.has(t));
      const committed = new Map<string, number>();
      for (const t of present.length > 0
        ? await whileCoordinatorMoves(() =>
            admin.fetchOffsets({ groupId: config.groupId, topics: present }),
          )
        : []) {
        for (const p of t.partitions) {
          if (Number(p.offset) >= 0) committed.set(`${t.topic}:${p.partition}`, Number(p.offset));
        }
      }
      const stored = await mysqlReads.offsets;
      for (const topic of present) {
        for (const p of await admin.fetchTopicOffsets(topic)) {
          const end = Number(p.high);
          const tp = `${topic}:${p.partition}`;
          const kafkaCommitted = committed.get(tp);
          const mysqlOffset = stored.ok ? stored.value.get(tp) : undefined;
          // Where the sink starts: MySQL's offset, else Kafka's committed one, else the earliest.
          const from = mysqlOffset ?? kafkaCommitted ?? Number(p.low);
          partitions.push({
            topic,
            partition: p.partition,
            end,
            mysqlOffset,
            kafkaCommitted,
            lag: end - from,
            offsetsDiffer: stored.ok && mysqlOffset !== kafkaCommitted,
          });
        }
      }
      return {
        group: config.groupId,
        partitions,
        totalLag: partitions.reduce((a, p) => a + p.lag, 0),
        offsetsDiffer: partitions.filter((p) => p.offsetsDiffer).length,
        ...(stored.ok ? {} : { mysqlOffsetsError: stored.error }),
        dltTopic: config.dltTopic,
      };
    } finally {
      await admin.disconnect();
    }
  });
  const parked = mysqlReads.parked;
  const deadLetters = mysqlReads.dead;
  await mysqlReads.closed;
  return {
    at: new Date(now).toISOString(),
    relay: await relay,
    sink: await sink,
    parked: await parked,
    deadLetters: await deadLetters,
    lastVerify: await mysqlReads.verified,
  };
}

const secs = (ms: number | undefined): string =>
  ms === undefined ? 'none' : `${(ms / 1000).toFixed(1)} s`;

export function formatStatus(s: Status): string {
  const out: string[] = [`cqrs-sync status at ${s.at}`, ''];
  out.push('relay');
  if (!s.relay.ok) out.push(`  unreachable: ${s.relay.error}`);
  else {
    const r = s.relay.value;
    const names = Object.values(r.collections).map((c) => `${r.database}.${c}`);
    out.push(`  outbox         in the aggregate documents of ${names.join(', ')}`);
    out.push(
      `  lease          ${
        !r.lease
          ? 'never taken (no relay has run)'
          : r.lease.expiresInMs > 0
            ? `held by ${r.lease.owner}, fencing token ${r.lease.token}, renews within ${secs(r.lease.expiresInMs)}`
            : `free (last holder ${r.lease.owner}, token ${r.lease.token}, expired ${secs(-r.lease.expiresInMs)} ago): no active relay`
      }`,
    );
    out.push(
      `  backlog        ${r.backlog} pending${r.oldestPendingAgeMs === undefined ? '' : `, oldest ${secs(r.oldestPendingAgeMs)} old`}`,
    );
    out.push(
      `  held           ${r.held.length === 0 ? 'none' : `${r.held.length} aggregates behind a failed entry (relay release <id>): ${r.held.slice(0, 5).join(', ')}${r.held.length > 5 ? ', …' : ''}`}`,
    );
    out.push(
      `  resume token   ${r.resumeTokenError !== undefined ? `unreadable: ${r.resumeTokenError}` : r.resumeTokenAgeMs === undefined ? 'none saved' : `saved ${secs(r.resumeTokenAgeMs)} ago`}`,
    );
  }
  out.push('', 'sink');
  if (!s.sink.ok) out.push(`  unreachable: ${s.sink.error}`);
  else {
    const k = s.sink.value;
    out.push(`  group          ${k.group}`);
    out.push(
      `  lag            ${k.totalLag} records in all, after ${k.mysqlOffsetsError === undefined ? "MySQL's offsets" : "Kafka's committed offsets"}`,
    );
    const width = Math.max(5, ...k.partitions.map((p) => p.topic.length));
    const cell = (v: number | undefined): string => String(v ?? '-').padEnd(9);
    out.push(`    ${'topic'.padEnd(width)}  partition  end        mysql      kafka      lag`);
    for (const p of k.partitions) {
      out.push(
        `    ${p.topic.padEnd(width)}  ${cell(p.partition)}  ${cell(p.end)}  ${cell(p.mysqlOffset)}  ${cell(p.kafkaCommitted)}  ${p.offsetsDiffer ? `${String(p.lag).padEnd(9)}  differs` : p.lag}`,
      );
    }
    out.push(
      `  offsets        ${
        k.mysqlOffsetsError !== undefined
          ? `MySQL's unreadable (${k.mysqlOffsetsError}): lag is from Kafka's committed offsets`
          : k.offsetsDiffer === 0
            ? "MySQL's and Kafka's committed offsets agree"
            : `${k.offsetsDiffer} partitions where MySQL's and Kafka's committed offsets differ; sinks start from MySQL's`
      }`,
    );
  }
  out.push(
    `  dead letters   ${s.deadLetters.ok ? `${s.deadLetters.value} held (sink dlq list)${s.sink.ok ? `; copies on ${s.sink.value.dltTopic}` : ''}` : `unreachable: ${s.deadLetters.error}`}`,
  );
  out.push(
    `  parked         ${s.parked.ok ? `${s.parked.value} aggregates` : `unreachable: ${s.parked.error}`}`,
  );
  out.push(
    `  last verify    ${s.lastVerify.ok ? formatRun(s.lastVerify.value, s.at) : `unreadable: ${s.lastVerify.error}`}`,
  );
  return out.join('\n');
}

function formatRun(r: VerifyRun | undefined, at: string): string {
  if (!r) return 'never ran (cqrs-sync verify)';
  const ago = secs(Date.parse(at) - r.finishedAt.getTime());
  const found: string[] = [];
  let repaired = 0;
  for (const [type, byClass] of Object.entries(r.drift)) {
    const parts = Object.entries(byClass)
      .filter(([, n]) => n > 0)
      .map(([c, n]) => `${c} ${n}`);
    if (parts.length > 0) found.push(`${type}: ${parts.join(', ')}`);
  }
  for (const byClass of Object.values(r.repaired))
    for (const n of Object.values(byClass)) repaired += n;
  return `${r.finishedAt.toISOString()} (${ago} ago), ${r.checked} checked, ${r.inFlight} in flight: ${
    r.clean ? 'clean' : `drift (${found.join('; ')})`
  }${r.repair ? `; ${repaired} repaired` : ''}`;
}

export const STATUS_HELP = `Usage: cqrs-sync status [--json]

  Relay lease and fencing token, outbox backlog (pending entries in the aggregate documents) and the
  age of its oldest entry, aggregates held behind a failed entry, resume token age, the sink group's
  offsets per partition (MySQL's, where a sink starts, and Kafka's committed ones, flagged where they
  differ) and its lag after MySQL's, dead letters, parked aggregates and the last verify. Reads MongoDB, Kafka and
  MySQL directly (the relay's and the sink's environment), so it works while they are down.

Examples:
  cqrs-sync status
  cqrs-sync status --json | jq .sink.value.totalLag
`;

export async function statusCli(
  argv: readonly string[],
  catalog: Catalog,
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(STATUS_HELP);
    return 0;
  }
  const s = await readStatus(catalog, env);
  process.stdout.write(
    argv.includes('--json') ? `${JSON.stringify(s, null, 2)}\n` : `${formatStatus(s)}\n`,
  );
  // Nonzero when a section could not be read, so scripts notice.
  return s.relay.ok && s.sink.ok && s.parked.ok && s.deadLetters.ok ? 0 : 1;
}
