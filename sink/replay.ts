/**
 * Replay and rebuild. `--to earliest` rebuilds the read model from the start of every topic:
 * in place (the projections' tables and the sink's bookkeeping are emptied first) or, with
 * `--shadow`, into `<table>__shadow` copies that replace the live tables in one atomic RENAME once
 * they caught up, so reads are served from the old tables throughout. `--to <timestamp>` moves the
 * group back to that time and re-delivers from there: dedupe and the version gate make it fill only
 * what is missing (after restoring a backup), it changes nothing already applied.
 *
 * Refused while the consumer group has active members: stop the sinks first.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { Catalog } from '../schemas/catalog.js';
import { PipelineError } from '../schemas/errors.js';
import { SinkAdmin } from './admin.js';
import type { SinkConfig } from './config.js';
import type { PartitionOffset } from './ports.js';
import type { Projection } from './projection.js';
import { createKafka, startSink } from './sink.js';

export { SHADOW_SUFFIX } from './admin.js';

export interface ReplayOptions {
  readonly catalog: Catalog;
  readonly projections: readonly Projection[];
  readonly config: SinkConfig;
  readonly to: 'earliest' | Date;
  readonly shadow: boolean;
  readonly logger: Logger;
  readonly kafka?: Kafka;
  readonly progress?: ReplayProgress;
}

/** What a replay tells whoever shows its progress (the CLI: ops/progress.ts). */
export interface ReplayProgress {
  /** A phase starts, the previous one ends: stopping (the group must be empty), rewinding
   * (offsets and tables), applying (up to the end offsets taken at start), draining (the embedded
   * sink commits and leaves the group: seconds that are not applying), swapping (--shadow). */
  phase(
    name: 'stopping' | 'rewinding' | 'applying' | 'draining' | 'swapping',
    detail: string,
  ): void;
  /** Events applied of those to apply, about once a second while applying. */
  applied(done: number, total: number): void;
}

export interface ReplayResult {
  readonly events: number;
  readonly ms: number;
  readonly swapped: boolean;
}

export async function activeMembers(kafka: Kafka, group: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([group]);
    return groups[0]?.members.length ?? 0;
  } finally {
    await admin.disconnect();
  }
}

/** kafkajs's answer to deleting a group that has no offsets (GROUP_ID_NOT_FOUND, code 69). */
function groupNotFound(e: unknown): boolean {
  const groups = (e as { groups?: { errorCode?: number }[] } | undefined)?.groups;
  return Array.isArray(groups) && groups.every((g) => g.errorCode === 69);
}

export async function replay(o: ReplayOptions): Promise<ReplayResult> {
  const started = Date.now();
  const { config } = o;
  const group = config.groupId;
  if (o.shadow && o.to !== 'earliest') {
    throw new PipelineError(
      'config_invalid',
      '--shadow rebuilds from the start: use it with --to earliest',
      { retriable: false },
    );
  }
  const kafka = o.kafka ?? createKafka(config, o.logger);
  o.progress?.phase('stopping', `checking that consumer group ${group} has no active members`);
  const members = await activeMembers(kafka, group);
  if (members > 0) {
    throw new PipelineError(
      'config_invalid',
      `consumer group ${group} has ${members} active member(s): stop its sinks before a replay`,
      { retriable: false },
    );
  }
  const topics = config.topics.length > 0 ? [...config.topics] : o.catalog.topics();
  o.progress?.phase(
    'rewinding',
    `${topics.length} topic(s) to ${o.to === 'earliest' ? 'earliest' : o.to.toISOString()}, ${o.shadow ? 'into fresh shadow tables' : o.to === 'earliest' ? 'emptying the read model' : 'keeping what is applied'}`,
  );
  const admin = kafka.admin();
  await admin.connect();
  const start: PartitionOffset[] = [];
  const end = new Map<string, bigint>();
  let total = 0n;
  try {
    for (const topic of topics) {
      const offs = await admin.fetchTopicOffsets(topic);
      const at =
        o.to === 'earliest'
          ? offs.map((p) => ({ partition: p.partition, offset: p.low }))
          : await admin.fetchTopicOffsetsByTimestamp(topic, o.to.getTime());
      for (const p of offs) {
        const from = at.find((a) => a.partition === p.partition)?.offset ?? p.high;
        const s = BigInt(from) < 0n ? BigInt(p.high) : BigInt(from);
        start.push({ topic, partition: p.partition, next: String(s) });
        end.set(`${topic}:${p.partition}`, BigInt(p.high));
        total += BigInt(p.high) - s;
      }
    }
    // MySQL's offsets (written below) are where the sink starts on every assignment; Kafka's are
    // only a hint. Deleting the group's Kafka offsets is one request, where `admin.setOffsets`
    // joins the group once per topic (seconds each); the sink commits fresh ones as it applies.
    await admin.deleteGroups([group]).catch((e: unknown) => {
      if (!groupNotFound(e)) throw e;
    });
  } finally {
    await admin.disconnect();
  }

  // Operators' decisions are not rebuilt (nor emptied): the shadow sink reads the live table.
  const db = new SinkAdmin({ connection: config.mysqlAdminUrl, group, shadow: o.shadow });
  try {
    if (o.shadow) await db.prepareRebuild(o.projections, 'shadow');
    else if (o.to === 'earliest') await db.prepareRebuild(o.projections, 'in-place');
    await db.rewind(start);

    o.logger.info({ group, to: o.to, shadow: o.shadow, events: Number(total) }, 'replay started');
    o.progress?.phase(
      'applying',
      `${Number(total).toLocaleString('en')} events, up to the end offsets taken at start`,
    );
    o.progress?.applied(0, Number(total));
    const sink = await startSink({
      catalog: o.catalog,
      projections: o.projections,
      config,
      logger: o.logger,
      physical: db.physical,
      mysqlUrl: config.mysqlAdminUrl,
    });
    try {
      for (;;) {
        const done = await progressOf(db, topics, start, end);
        o.progress?.applied(done, Number(total));
        if (done >= Number(total)) break;
        if (sink.state === 'failed') await sink.done;
        await new Promise((r) => setTimeout(r, 1000));
      }
      o.progress?.phase('draining', 'the embedded sink commits and leaves the group');
    } finally {
      await sink.stop();
    }
    if (o.shadow) {
      o.progress?.phase('swapping', 'shadow tables in with one atomic RENAME');
      // Other groups' positions move along with the swap.
      await db.swapInShadows(o.projections);
    }
  } finally {
    await db.close();
  }
  const result = { events: Number(total), ms: Date.now() - started, swapped: o.shadow };
  o.logger.info(result, 'replay finished');
  return result;
}

async function progressOf(
  db: SinkAdmin,
  topics: readonly string[],
  start: readonly PartitionOffset[],
  end: ReadonlyMap<string, bigint>,
): Promise<number> {
  let done = 0n;
  for (const topic of topics) {
    const stored = await db.offsets(topic);
    for (const s of start.filter((x) => x.topic === topic)) {
      const high = end.get(`${topic}:${s.partition}`) ?? 0n;
      const at = BigInt(stored.get(s.partition) ?? s.next);
      done += (at > high ? high : at) - BigInt(s.next);
    }
  }
  return Number(done);
}
