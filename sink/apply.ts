/**
 * Applies batches of one partition: decode, plan (planner.ts), and run the plan in one MySQL
 * transaction together with the dedupe ids, versions, held records and the partition offset.
 * A projection failure a retry cannot fix rolls the batch back and replays it event by event, so
 * only the poison event is dead-lettered. Retriable failures are thrown to the caller (which backs
 * off and retries the same batch).
 */
import type { Catalog } from '../schemas/catalog.js';
import type { EventCodec } from '../schemas/codec.js';
import { PipelineError } from '../schemas/errors.js';
import { decodeRecord } from './decode.js';
import { classifyError } from './mysql-errors.js';
import {
  planBatch,
  type Decoded,
  type HeldDecoded,
  type Outcome,
  type PlanInput,
  type RawRecord,
} from './planner.js';
import {
  identifier,
  sql,
  type DeliveredEvent,
  type Operation,
  type Projection,
} from './projection.js';
import {
  aggregateKeyOf,
  type AggregateKey,
  type AggregateRecord,
  type DeadLetterPublisher,
  type Decision,
  type DecisionRecord,
  type HeldRecord,
  type ReadModelStore,
  type SinkTransaction,
} from './ports.js';

export type OutcomeCounts = Record<
  'applied' | 'duplicate' | 'stale' | 'held' | 'dead_lettered' | 'dropped' | 'released',
  number
>;

export const emptyCounts = (): OutcomeCounts => ({
  applied: 0,
  duplicate: 0,
  stale: 0,
  held: 0,
  dead_lettered: 0,
  dropped: 0,
  released: 0,
});

export interface ApplierDeps {
  readonly store: ReadModelStore;
  readonly codec: EventCodec;
  readonly catalog: Catalog;
  readonly projections: readonly Projection[];
  readonly deadLetters: DeadLetterPublisher;
  readonly group: string;
  readonly now?: () => Date;
}

export interface RedriveResult {
  readonly aggregate: AggregateKey;
  readonly applied: number;
  readonly stale: number;
}

export interface DropResult {
  readonly aggregate: AggregateKey;
  /** Held events of the aggregate left after the drop; 0 means it was un-parked. */
  readonly stillHeld: number;
}

/** The projections with what each handles, resolved against the catalog once. */
export interface ProjectionHandler {
  readonly p: Projection;
  readonly types: ReadonlySet<string>;
  readonly aggs: ReadonlySet<string>;
}

export function projectionHandlers(
  catalog: Catalog,
  projections: readonly Projection[],
): ProjectionHandler[] {
  return projections.map((p) => ({
    p,
    types: new Set(p.handles.filter((h) => catalog.findEvent(h))),
    aggs: new Set(p.handles.filter((h) => catalog.findAggregate(h))),
  }));
}

/**
 * Operations of every projection for these events (in order). A repair event first deletes the
 * rows the projection owns for its aggregate, so they are rebuilt from its state (the row-level
 * version guards would keep a row at the same version as it is).
 */
export function planProjections(
  handlers: readonly ProjectionHandler[],
  events: readonly DeliveredEvent[],
): Operation[] {
  const ops: Operation[] = [];
  for (const h of handlers) {
    const mine = events.filter(
      (e) => h.types.has(e.eventType) || h.aggs.has(e.metadata.aggregateType),
    );
    if (mine.length === 0) continue;
    try {
      // One DELETE per owned table for all the repaired ids (verify plans 500 at a time: one
      // statement per aggregate was most of its run time).
      for (const o of h.p.owns ?? []) {
        const ids = [
          ...new Set(
            mine
              .filter((e) => e.repair && e.metadata.aggregateType === o.aggregateType)
              .map((e) => e.metadata.aggregateId),
          ),
        ];
        for (let i = 0; i < ids.length; i += 1000) {
          ops.push({
            op: 'statement',
            statement: sql`DELETE FROM ${{ kind: 'table', name: o.table }} WHERE ${identifier(o.key)} IN (${ids.slice(i, i + 1000)})`,
          });
        }
      }
      ops.push(...h.p.plan(mine));
    } catch (e) {
      throw classifyError(e, { projection: h.p.name });
    }
  }
  return ops;
}

/** Batches planned on locked records after `insertNewAggregates` found a known aggregate, before
 * the next try: where aggregates repeat, the try costs a second plan and a failed statement. */
const NEW_AGGREGATES_BACKOFF = 8;

export class Applier {
  private readonly handlers: ProjectionHandler[];
  private readonly now: () => Date;
  private newBackoff = 0;

  constructor(private readonly deps: ApplierDeps) {
    this.now = deps.now ?? (() => new Date());
    this.handlers = projectionHandlers(deps.catalog, deps.projections);
  }

  /** Operations of every projection for these events (in order). */
  plan(events: readonly DeliveredEvent[]): Operation[] {
    return planProjections(this.handlers, events);
  }

  async decode(raw: RawRecord): Promise<Decoded> {
    return decodeRecord(raw, this.deps.codec, this.deps.catalog);
  }

  /**
   * Decodes records (offset order). Pure: what a record decodes to depends on its bytes and its
   * writer schema only, never on MySQL, so the sink may decode a chunk while the previous chunk's
   * transaction is in flight. With `slice`, yields to the event loop after every `slice` records,
   * so that the transaction's replies are handled between slices instead of after all of them.
   * Throws only retriable errors (the registry unreachable).
   */
  async decodeAll(records: readonly RawRecord[], slice = Infinity): Promise<Decoded[]> {
    const decoded: Decoded[] = [];
    for (const r of records) {
      if (decoded.length > 0 && decoded.length % slice === 0) await yieldToIo();
      // Awaits only the first record of a writer schema not loaded yet.
      const d = decodeRecord(r, this.deps.codec, this.deps.catalog);
      decoded.push(d instanceof Promise ? await d : d);
    }
    return decoded;
  }

  /** Applies records of one partition (offset order). Throws only retriable errors. */
  async applyBatch(records: readonly RawRecord[]): Promise<OutcomeCounts> {
    return this.applyDecoded(await this.decodeAll(records));
  }

  /** Applies decoded records of one partition (offset order, from `decodeAll`). Throws only
   * retriable errors. */
  async applyDecoded(decoded: readonly Decoded[]): Promise<OutcomeCounts> {
    if (decoded.length === 0) return emptyCounts();
    try {
      return await this.runBatch(decoded, new Map());
    } catch (e) {
      const err = classifyError(e);
      if (err.retriable) throw err;
      if (decoded.length === 1)
        return this.runBatch(decoded, new Map([[decoded[0]?.raw.offset ?? '', err]]));
      // Find the poison event: one transaction per event.
      const total = emptyCounts();
      for (const d of decoded) add(total, await this.applyDecoded([d]));
      return total;
    }
  }

  private async runBatch(
    decoded: readonly Decoded[],
    forcedDead: ReadonlyMap<string, PipelineError>,
  ): Promise<OutcomeCounts> {
    const last = decoded[decoded.length - 1];
    if (!last) return emptyCounts();
    return this.deps.store.transaction(async (tx) => {
      const ids = decoded.map((d) => (d.ok ? d.event.metadata.eventId : d.eventId));
      // Redeliveries are rare: claim every id in one statement, and look them up only when that
      // finds one seen before. The planner marks every record that is not a duplicate as seen, so
      // a successful claim is exactly its `markSeen`.
      const claimed = await tx.claim(ids);
      const seen = claimed ? new Set<string>() : await tx.seen(ids);
      // Dead letters dropped or re-driven before (a replay brings them again).
      const decisions = await tx.decisions(ids);
      const keys = uniqueKeys(decoded.map((d) => (d.ok ? d.event.metadata : d.key)));
      const now = this.now();
      const input = { records: decoded, seen, forcedDead, decisions, now };
      // New aggregates only (a first load, one event each): plan as if none had a record and insert
      // them in one statement instead of a lock and a save; when one has a record, the insert
      // writes nothing and the batch is planned on the locked records as usual.
      const guess =
        claimed && this.tryNew()
          ? planBatch({ ...input, aggregates: new Map(), held: new Map() })
          : undefined;
      const inserted =
        guess !== undefined &&
        guess.aggregates.length === keys.length &&
        guess.aggregates.every((a) => a.status === 'ok') &&
        (await tx.insertNewAggregates(guess.aggregates));
      if (guess) this.newBackoff = inserted ? 0 : NEW_AGGREGATES_BACKOFF;
      const plan = inserted
        ? guess
        : planBatch({ ...input, ...(await this.lockedState(tx, keys)) });
      if (!claimed && !(await tx.markSeen(plan.markSeen))) {
        // Rolls the batch back; the retry finds that event seen and counts it as a duplicate.
        throw new PipelineError(
          'concurrency_conflict',
          'an event of this batch was applied meanwhile by another consumer; retrying',
          { retriable: true, context: { topic: last.raw.topic, partition: last.raw.partition } },
        );
      }
      await tx.execute(this.plan(plan.apply));
      if (!inserted) await tx.saveAggregates(plan.aggregates);
      await tx.hold(plan.hold);
      await tx.release(plan.releaseIds);
      for (const d of plan.deadHeld) await this.deadHeld(tx, d.id, d.error);
      await tx.saveOffsets(this.deps.group, [
        {
          topic: last.raw.topic,
          partition: last.raw.partition,
          next: String(BigInt(last.raw.offset) + 1n),
        },
      ]);
      // Before the commit: a crash in between dead-letters twice, never zero times.
      await this.deps.deadLetters.publish(plan.dead);
      const counts = countOutcomes(plan.outcomes);
      counts.released = plan.released;
      return counts;
    });
  }

  /** The batch's aggregates, locked, and the held events of those waiting for a gap. */
  private async lockedState(
    tx: SinkTransaction,
    keys: readonly AggregateKey[],
  ): Promise<Pick<PlanInput, 'aggregates' | 'held'>> {
    const aggregates = await tx.lockAggregates(keys);
    const gaps = [...aggregates.values()].filter((a) => a.status === 'gap');
    return { aggregates, held: await this.heldFor(tx, gaps) };
  }

  private tryNew(): boolean {
    if (this.newBackoff === 0) return true;
    this.newBackoff--;
    return false;
  }

  private async deadHeld(tx: SinkTransaction, id: number, error: PipelineError): Promise<void> {
    await tx.updateHeld(id, {
      kind: 'dead',
      errorCode: error.code,
      errorMessage: error.message,
      firstFailedAt: this.now(),
      attempts: 1,
    });
  }

  private async heldFor(
    tx: SinkTransaction,
    keys: readonly AggregateKey[],
  ): Promise<Map<string, HeldDecoded[]>> {
    const out = new Map<string, HeldDecoded[]>();
    if (keys.length === 0) return out;
    for (const h of await tx.heldOf(keys)) {
      const k = aggregateKeyOf(h);
      let list = out.get(k);
      if (!list) out.set(k, (list = []));
      list.push({ held: h, decoded: await this.decode(rawOfHeld(h)) });
    }
    return out;
  }

  /**
   * Dead-letters the held events of aggregates whose gap is older than `timeoutMs`: the first held
   * event goes to the DLT as `version_gap`, the aggregate is parked.
   */
  async expireGaps(timeoutMs: number): Promise<number> {
    const cutoff = new Date(this.now().getTime() - timeoutMs);
    return this.deps.store.transaction(async (tx) => {
      const gaps = await tx.aggregatesWithStatus('gap', cutoff);
      let n = 0;
      for (const a of gaps) {
        const held = await tx.heldOf([a]);
        const first = held[0];
        const error = new PipelineError(
          'version_gap',
          `version ${a.version + 1} of ${a.aggregateType} ${a.aggregateId} did not arrive within ${timeoutMs} ms (held: ${held.map((h) => h.version).join(', ')})`,
          {
            retriable: false,
            context: {
              aggregateType: a.aggregateType,
              aggregateId: a.aggregateId,
              version: a.version + 1,
            },
          },
        );
        await tx.saveAggregates([
          {
            ...a,
            status: 'parked',
            statusSince: this.now(),
            reason: `version_gap: ${error.message}`,
          },
        ]);
        if (first?.id !== undefined) {
          await this.deadHeld(tx, first.id, error);
          for (const h of held.slice(1))
            if (h.id !== undefined) await tx.updateHeld(h.id, { kind: 'parked' });
          await this.deps.deadLetters.publish([
            {
              record: { ...first, attempts: 1, firstFailedAt: this.now() },
              errorCode: error.code,
              errorMessage: error.message,
            },
          ]);
        }
        n++;
      }
      return n;
    });
  }

  /**
   * Applies the held events of a parked aggregate in version order (gaps accepted: events carry the
   * state) and un-parks it. If one still fails, nothing is applied and its attempts are counted.
   * Each applied event is recorded as `redriven` in the same transaction.
   */
  async redrive(target: string, by: string | null = null): Promise<RedriveResult> {
    const key = await this.deps.store.transaction((tx) => tx.findHeldAggregate(target));
    if (!key) {
      throw new PipelineError(
        'config_invalid',
        `nothing held matches "${target}" (give a held id, an event id, or Type/aggregateId)`,
        {
          retriable: false,
        },
      );
    }
    let failure: { id: number; error: PipelineError; attempts: number } | undefined;
    try {
      return await this.deps.store.transaction(async (tx) => {
        const current = (await tx.lockAggregates([key])).get(aggregateKeyOf(key));
        let a: AggregateRecord = current ?? {
          ...key,
          version: 0,
          deleted: false,
          status: 'ok',
          statusSince: this.now(),
          reason: null,
        };
        const held = await tx.heldOf([key]);
        const redriven: HeldRecord[] = [];
        let stale = 0;
        for (const h of held) {
          if (h.version > 0 && h.version <= a.version) {
            stale++;
            continue;
          }
          const d = await this.decode(rawOfHeld(h));
          try {
            if (!d.ok) throw d.error;
            await tx.execute(this.plan([d.event]));
          } catch (e) {
            const error = classifyError(e);
            if (!error.retriable && h.id !== undefined)
              failure = { id: h.id, error, attempts: h.attempts + 1 };
            throw error;
          }
          a = { ...a, version: d.event.metadata.version, deleted: d.event.deletes };
          redriven.push(h);
        }
        await tx.release(held.flatMap((h) => (h.id === undefined ? [] : [h.id])));
        await tx.saveAggregates([{ ...a, status: 'ok', statusSince: this.now(), reason: null }]);
        // A replay applies them as this did, gaps accepted.
        await tx.decide(redriven.map((h) => this.decision(h, 'redriven', by)));
        return { aggregate: key, applied: redriven.length, stale };
      });
    } catch (e) {
      const f = failure;
      if (f) {
        await this.deps.store.transaction(async (tx) => {
          await tx.updateHeld(f.id, {
            kind: 'dead',
            attempts: f.attempts,
            errorCode: f.error.code,
            errorMessage: f.error.message,
          });
        });
      }
      throw e;
    }
  }
  /**
   * Discards dead letter `id`. When it was the aggregate's last held event, the aggregate is
   * un-parked in the same transaction (else nothing would ever wake it: there is nothing left to
   * re-drive), at the dropped event's version at least, so that its successor is not taken for a gap.
   * The event id is recorded as `dropped` in the same transaction.
   */
  async drop(id: string, by: string | null = null): Promise<DropResult> {
    const missing = (): PipelineError =>
      new PipelineError('config_invalid', `no dead letter #${id}`, { retriable: false });
    if (!/^\d+$/.test(id)) throw missing();
    return this.deps.store.transaction(async (tx) => {
      const key = await tx.findHeldAggregate(id);
      if (!key) throw missing();
      const a = (await tx.lockAggregates([key])).get(aggregateKeyOf(key));
      const held = await tx.heldOf([key]);
      const dropped = held.find((h) => h.id === Number(id) && h.kind === 'dead');
      if (!dropped) throw missing();
      await tx.release([Number(id)]);
      // A replay skips the event as this drop does, instead of dead-lettering it again.
      await tx.decide([this.decision(dropped, 'dropped', by)]);
      const rest = held.length - 1;
      if (rest === 0 && a && a.status !== 'ok') {
        await tx.saveAggregates([
          {
            ...a,
            version: Math.max(a.version, dropped.version),
            status: 'ok',
            statusSince: this.now(),
            reason: null,
          },
        ]);
      }
      return { aggregate: key, stillHeld: rest };
    });
  }

  private decision(h: HeldRecord, decision: Decision, by: string | null): DecisionRecord {
    return {
      eventId: h.eventId,
      aggregateType: h.aggregateType,
      aggregateId: h.aggregateId,
      version: h.version,
      decision,
      decidedAt: this.now(),
      decidedBy: by,
    };
  }
}

export function rawOfHeld(h: HeldRecord): RawRecord {
  return {
    topic: h.topic,
    partition: h.partition,
    offset: h.offset,
    key: h.key,
    value: h.value,
    headers: h.headers,
  };
}

/** After the I/O callbacks already due (setImmediate runs after the poll phase). */
const yieldToIo = (): Promise<void> =>
  new Promise((resolve) => {
    setImmediate(resolve);
  });

function uniqueKeys(keys: readonly AggregateKey[]): AggregateKey[] {
  const m = new Map<string, AggregateKey>();
  for (const k of keys)
    m.set(aggregateKeyOf(k), { aggregateType: k.aggregateType, aggregateId: k.aggregateId });
  return [...m.values()];
}

function countOutcomes(outcomes: readonly Outcome[]): OutcomeCounts {
  const c = emptyCounts();
  for (const o of outcomes) c[o.applied ? 'applied' : o.reason]++;
  return c;
}

export function add(into: OutcomeCounts, more: OutcomeCounts): OutcomeCounts {
  for (const k of Object.keys(into) as (keyof OutcomeCounts)[]) into[k] += more[k];
  return into;
}
