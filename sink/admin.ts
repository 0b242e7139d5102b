/**
 * `SinkAdmin`: what tools beside the sink do with its tables (the `sink dlq` and `sink replay`
 * commands, `cqrs-sync status`, the demo's panel): list dead letters and parked aggregates, show,
 * re-drive and drop, count, rewind offsets and reset the tables for a rebuild. They call this, never
 * SQL of their own: the statements are in sink/tables/, one module per table.
 */
import type mysql from 'mysql2/promise';
import type { Catalog } from '../schemas/catalog.js';
import type { EventCodec } from '../schemas/codec.js';
import { PipelineError } from '../schemas/errors.js';
import { Applier, rawOfHeld, type DropResult, type RedriveResult } from './apply.js';
import { MysqlStore } from './mysql-store.js';
import type { Decoded } from './planner.js';
import type { DeadLetterPublisher, HeldRecord, PartitionOffset } from './ports.js';
import type { Projection } from './projection.js';
import {
  sinkTables,
  KEPT_SINK_TABLES,
  SINK_TABLES,
  REBUILT_SINK_TABLES,
  type SinkTables,
} from './tables/index.js';
import type { HeldSummary } from './tables/held.js';
import type { AppliedEvent } from './tables/seen-events.js';
import { createShadows, emptyTables, swapInShadows } from './tables/rebuild.js';
import { projectionTables } from './validate.js';

/** `<table>__shadow`: where `replay --shadow` rebuilds each table before swapping it in. */
export const SHADOW_SUFFIX = '__shadow';

export interface SinkAdminOptions {
  /** A URL (the admin owns its pool) or a pool it borrows. Re-drive, drop and the rebuild
   * statements need an account that may write (and, for a rebuild, create) the tables. */
  readonly connection: string | mysql.Pool;
  /** The sink's consumer group (`SINK_GROUP_ID`): whose offsets, and who re-drives. */
  readonly group: string;
  readonly poolSize?: number;
  /** Work on the `__shadow` copies of the rebuilt tables (`replay --shadow`); the operators'
   * decisions stay the live table's. */
  readonly shadow?: boolean;
  /** For `redrive`, `drop` and `decode`: what the sink applies with. */
  readonly catalog?: Catalog;
  readonly projections?: readonly Projection[];
  readonly codec?: EventCodec;
  /** Where an event that fails again during a re-drive is dead-lettered; default: kept in MySQL
   * only (the `cqrs-sync sink dlq` commands). */
  readonly deadLetters?: DeadLetterPublisher;
}

/** `dlq list --json`: camelCase and numbers as numbers, like `cqrs-sync status --json`. */
export interface DeadLetterView {
  readonly id: number;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly version: number;
  readonly eventType: string;
  readonly errorCode: string;
  readonly errorMessage: string;
  readonly attempts: number;
  readonly firstFailedAt: string | null;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/** An aggregate parked behind a dead letter, or waiting for a version gap to close. */
export interface ParkedView {
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly version: number;
  readonly status: string;
  readonly statusSince: string;
  readonly reason: string | null;
  /** Held events of the aggregate, in the order a re-drive applies them. */
  readonly heldIds: number[];
}

export interface SinkCounts {
  /** Held rows of kind `dead`. */
  readonly deadLetters: number;
  /** Held rows of every kind. */
  readonly held: number;
  /** Aggregates parked behind a dead letter. */
  readonly parked: number;
  /** The sum of the group's next offsets. */
  readonly applied: number;
  /** Next offset per `topic:partition`, as stored by the sink in MySQL. */
  readonly offsets: ReadonlyMap<string, bigint>;
}

export type { AppliedEvent, HeldSummary };

export class SinkAdmin {
  private readonly store: MysqlStore;
  private readonly tables: SinkTables;
  private readonly group: string;
  private applier: Applier | undefined;
  /** Logical -> physical table names, as a sink working on the same tables needs them. */
  readonly physical: (table: string) => string;

  constructor(private readonly o: SinkAdminOptions) {
    this.group = o.group;
    const shadow = o.shadow ?? false;
    this.physical = (t) => (shadow && !KEPT_SINK_TABLES.has(t) ? `${t}${SHADOW_SUFFIX}` : t);
    this.store = new MysqlStore({
      connection: o.connection,
      ...(o.poolSize !== undefined ? { poolSize: o.poolSize } : {}),
      physical: this.physical,
    });
    this.tables = sinkTables(this.store.pool, this.physical);
  }

  // Reads.

  /** Dead letters, in id order. */
  async deadLetters(): Promise<DeadLetterView[]> {
    return (await this.tables.held.dead()).map(deadLetterOf);
  }

  /** Aggregates parked or waiting for a gap, oldest first. */
  async parked(): Promise<ParkedView[]> {
    return (await this.tables.aggregates.waiting(this.tables.nameOf(SINK_TABLES.held))).map(
      parkedOf,
    );
  }

  /** One held record, bytes and all. */
  held(id: string | number): Promise<HeldRecord | undefined> {
    return this.tables.held.byId(id);
  }

  /** The held rows of these events, or (no ids) the dead and parked ones; newest first. */
  heldEvents(eventIds?: readonly string[], limit = 50): Promise<HeldSummary[]> {
    return this.tables.held.recent(eventIds, limit);
  }

  /** When the sink applied these events (its dedupe table), in ms since the epoch. */
  appliedAt(eventIds: readonly string[]): Promise<AppliedEvent[]> {
    return this.tables.events.appliedAt(eventIds);
  }

  async counts(): Promise<SinkCounts> {
    const [byKind, parked, offsets] = await Promise.all([
      this.tables.held.countByKind(),
      this.tables.aggregates.countParked(),
      this.tables.offsets.ofGroup(this.group),
    ]);
    let applied = 0n;
    for (const next of offsets.values()) applied += next;
    return {
      deadLetters: byKind.get('dead') ?? 0,
      held: [...byKind.values()].reduce((a, b) => a + b, 0),
      parked,
      applied: Number(applied),
      offsets,
    };
  }

  countParked(): Promise<number> {
    return this.store.countParked();
  }

  countDeadLetters(): Promise<number> {
    return this.store.countDeadLetters();
  }

  /** Changes whenever the sink applies, holds or releases anything (a live-update trigger). */
  async watermark(): Promise<string> {
    const [o, h, p] = await Promise.all([
      this.tables.offsets.sumOfGroup(this.group),
      this.tables.held.count(),
      this.tables.aggregates.countNotOk(),
    ]);
    return `${o}/${h}/${p}`;
  }

  /** The group's stored next offset per partition of `topic`. */
  offsets(topic: string): Promise<Map<number, string>> {
    return this.store.load(this.group, topic);
  }

  // Repairs.

  /** Decodes a held record as the sink would (to show it). */
  async decode(record: HeldRecord): Promise<Decoded> {
    const applier = this.repairer();
    return await applier.decode(rawOfHeld(record));
  }

  /** Applies a parked aggregate's held events in order and un-parks it (sink/apply.ts). */
  async redrive(target: string, decidedBy: string | null = null): Promise<RedriveResult> {
    const applier = this.repairer();
    return await applier.redrive(target, decidedBy);
  }

  /** Discards one dead letter; un-parks its aggregate if nothing else is held. */
  async drop(target: string, decidedBy: string | null = null): Promise<DropResult> {
    const applier = this.repairer();
    return await applier.drop(target, decidedBy);
  }

  // Offsets and rebuilds (the sink of the group must not run).

  /** Overwrites the group's stored offsets: the sink starts there on its next assignment. */
  setOffsets(offsets: readonly PartitionOffset[]): Promise<void> {
    return this.store.setOffsets(this.group, offsets);
  }

  /** Forgets every stored offset of the group, then stores these. */
  async rewind(offsets: readonly PartitionOffset[]): Promise<void> {
    await this.tables.offsets.deleteGroup(this.group);
    await this.setOffsets(offsets);
  }

  /**
   * Gets the tables ready for a rebuild of these projections and returns them (projections' tables
   * first): `in-place` empties them and the sink's bookkeeping but for the offsets (rewind those);
   * `shadow` makes fresh empty `__shadow` copies of them and of the offsets, for a sink on this
   * admin's `physical` names. The operators' decisions are neither emptied nor copied.
   */
  async prepareRebuild(
    projections: readonly Projection[],
    mode: 'in-place' | 'shadow',
  ): Promise<string[]> {
    const tables = rebuiltTables(projections);
    if (mode === 'shadow') {
      await createShadows(this.store.pool, tables, SHADOW_SUFFIX);
      return tables;
    }
    const emptied = tables.filter((t) => t !== SINK_TABLES.offsets);
    await emptyTables(this.store.pool, emptied);
    return emptied;
  }

  /** After a shadow rebuild: other groups' offsets are copied over, then every shadow table
   * replaces its live table in one atomic RENAME. */
  async swapInShadows(projections: readonly Projection[]): Promise<void> {
    const live = sinkTables(this.store.pool);
    await live.offsets.copyOtherGroups(this.tables.nameOf(SINK_TABLES.offsets), this.group);
    await swapInShadows(this.store.pool, rebuiltTables(projections), SHADOW_SUFFIX);
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  private repairer(): Applier {
    if (this.applier) return this.applier;
    const { catalog, projections, codec } = this.o;
    if (!catalog || !projections || !codec) {
      throw new PipelineError(
        'config_invalid',
        'SinkAdmin: re-drive, drop and decode need the catalog, projections and codec the sink applies with',
        { retriable: false },
      );
    }
    this.applier = new Applier({
      store: this.store,
      codec,
      catalog,
      projections,
      deadLetters: this.o.deadLetters ?? { publish: () => Promise.resolve() },
      group: this.group,
    });
    return this.applier;
  }
}

/** What a rebuild empties or copies: the projections' tables, then the sink's bookkeeping. */
function rebuiltTables(projections: readonly Projection[]): string[] {
  return [...projectionTables(projections), ...REBUILT_SINK_TABLES];
}

const str = (v: unknown): string =>
  v instanceof Date ? v.toISOString() : Buffer.isBuffer(v) ? v.toString() : String(v);
const time = (v: unknown): string | null =>
  v === null || v === undefined ? null : new Date(v instanceof Date ? v : str(v)).toISOString();

function deadLetterOf(r: Record<string, unknown>): DeadLetterView {
  return {
    id: Number(r.id),
    aggregateType: str(r.aggregate_type),
    aggregateId: str(r.aggregate_id),
    version: Number(r.version),
    eventType: str(r.event_type),
    errorCode: str(r.error_code),
    errorMessage: r.error_message === null ? '' : str(r.error_message),
    attempts: Number(r.attempts),
    firstFailedAt: time(r.first_failed_at),
    topic: str(r.topic),
    partition: Number(r.kpartition),
    offset: Number(r.koffset),
  };
}

function parkedOf(r: Record<string, unknown>): ParkedView {
  const ids = r.held_ids === null || r.held_ids === undefined ? '' : str(r.held_ids);
  return {
    aggregateType: str(r.aggregate_type),
    aggregateId: str(r.aggregate_id),
    version: Number(r.version),
    status: str(r.status),
    statusSince: time(r.status_since) ?? '',
    reason: r.reason === null || r.reason === undefined ? null : str(r.reason),
    heldIds: ids === '' ? [] : ids.split(',').map(Number),
  };
}
