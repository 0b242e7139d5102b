import { describe, expect, it } from '@jest/globals';
import { buildCatalog } from '../schemas/catalog.js';
import { PipelineError } from '../schemas/errors.js';
import { demoAggregates } from '../demo/domain/definitions.js';
import { demoProjections } from '../demo/read-model/projections.js';
import { backoffDelay, sleep } from '../ops/backoff.js';
import { checkSinkConfig, loadSinkConfig } from './config.js';
import { dltHeaders } from './dead-letter.js';
import { checksumOf, splitStatements } from './migrations.js';
import { classifyError, isRetriableSqlError } from './mysql-errors.js';
import { planBatch, type Decoded } from './planner.js';
import type { AggregateRecord } from './ports.js';
import {
  childTableProjection,
  defineProjection,
  identifier,
  render,
  sql,
  tableProjection,
  type DeliveredEvent,
} from './projection.js';
import { checkProjections, requiredTables } from './validate.js';

const catalog = buildCatalog(demoAggregates);

function ev(
  id: string,
  version: number,
  eventType = 'CustomerRenamed',
  state: Record<string, unknown> | null = { id, name: `n${version}`, email: 'e' },
): Decoded {
  const aggregateType = eventType.startsWith('Order') ? 'Order' : 'Customer';
  const event: DeliveredEvent = {
    metadata: {
      eventId: `${id}-${version}-${eventType}`,
      eventType,
      aggregateType,
      aggregateId: id,
      version,
      schemaId: 1,
      occurredAt: new Date(0),
    },
    eventType,
    payload: {},
    state,
    deletes: state === null,
    source: { topic: 't', partition: 0, offset: String(version) },
  };
  return {
    ok: true,
    raw: {
      topic: 't',
      partition: 0,
      offset: `${id}${version}`,
      key: null,
      value: null,
      headers: {},
    },
    event,
  };
}

const base = {
  seen: new Set<string>(),
  aggregates: new Map<string, AggregateRecord>(),
  held: new Map(),
  forcedDead: new Map(),
  now: new Date(0),
};
const stored = (
  id: string,
  version: number,
  status: AggregateRecord['status'] = 'ok',
): [string, AggregateRecord] => [
  `Customer\u0000${id}`,
  {
    aggregateType: 'Customer',
    aggregateId: id,
    version,
    deleted: false,
    status,
    statusSince: new Date(0),
    reason: null,
  },
];

describe('planBatch', () => {
  it('applies in order, drops duplicates and stale versions', () => {
    const a = ev('a', 1);
    const p = planBatch({
      ...base,
      records: [a, a, ev('a', 2), ev('b', 1)],
      aggregates: new Map([stored('b', 3)]),
    });
    expect(p.outcomes).toEqual([
      { applied: true },
      { applied: false, reason: 'duplicate' },
      { applied: true },
      { applied: false, reason: 'stale' },
    ]);
    expect(p.apply.map((e) => e.metadata.version)).toEqual([1, 2]);
    expect(p.aggregates.find((x) => x.aggregateId === 'a')?.version).toBe(2);
  });

  it('holds a gap and releases it when the missing version arrives', () => {
    const p = planBatch({
      ...base,
      records: [ev('a', 4), ev('a', 3)],
      aggregates: new Map([stored('a', 2)]),
    });
    expect(p.outcomes).toEqual([{ applied: false, reason: 'held' }, { applied: true }]);
    expect(p.apply.map((e) => e.metadata.version)).toEqual([3, 4]);
    expect(p.hold).toEqual([]);
    expect(p.aggregates[0]?.status).toBe('ok');
  });

  it('keeps a gap open when the missing version does not arrive; a snapshot is a baseline', () => {
    const p = planBatch({
      ...base,
      records: [ev('a', 5), ev('b', 9, 'CustomerSnapshotted')],
      aggregates: new Map([stored('a', 2), stored('b', 2)]),
    });
    expect(p.hold.map((h) => [h.kind, h.version])).toEqual([['gap', 5]]);
    expect(p.aggregates.find((x) => x.aggregateId === 'a')?.status).toBe('gap');
    expect(p.apply.map((e) => e.metadata.aggregateId)).toEqual(['b']);
  });

  it('releases held records from MySQL, drops stale ones', () => {
    const held = (v: number) => ({
      held: {
        id: v,
        kind: 'gap' as const,
        aggregateType: 'Customer',
        aggregateId: 'a',
        version: v,
        eventId: `h${v}`,
        eventType: 'CustomerRenamed',
        topic: 't',
        partition: 0,
        offset: String(v),
        key: null,
        value: null,
        headers: {},
        errorCode: null,
        errorMessage: null,
        attempts: 0,
        firstFailedAt: null,
        heldAt: new Date(0),
      },
      decoded: ev('a', v),
    });
    const p = planBatch({
      ...base,
      records: [ev('a', 3)],
      aggregates: new Map([stored('a', 2, 'gap')]),
      held: new Map([['Customer\u0000a', [held(2), held(4)]]]),
    });
    expect(p.apply.map((e) => e.metadata.version)).toEqual([3, 4]);
    expect(p.releaseIds.sort()).toEqual([2, 4]);
    expect(p.released).toBe(1);
  });

  it('dead-letters undecodable and forced records, parks, and holds what follows', () => {
    const bad: Decoded = {
      ok: false,
      raw: { topic: 't', partition: 0, offset: '9', key: null, value: null, headers: {} },
      key: { aggregateType: 'Customer', aggregateId: 'x' },
      eventId: 'bad',
      eventType: '?',
      version: 1,
      error: new PipelineError('payload_invalid', 'bad', { retriable: false }),
    };
    const forced = ev('y', 1);
    const p = planBatch({
      ...base,
      records: [bad, ev('x', 2), forced, ev('y', 2)],
      forcedDead: new Map([
        [
          forced.raw.offset,
          new PipelineError('constraint_violated', 'too long', { retriable: false }),
        ],
      ]),
    });
    expect(p.outcomes.map((o) => (o.applied ? 'applied' : o.reason))).toEqual([
      'dead_lettered',
      'held',
      'dead_lettered',
      'held',
    ]);
    expect(p.dead.map((d) => d.errorCode)).toEqual(['payload_invalid', 'constraint_violated']);
    expect(p.aggregates.every((a) => a.status === 'parked')).toBe(true);
    expect(p.apply).toEqual([]);
  });
});

describe('projection API', () => {
  it('parameterises values and resolves tables', () => {
    const s = sql`UPDATE ${{ kind: 'table', name: 't' }} SET ${identifier('a')} = ${'x'} WHERE id IN (${['1', '2']}) AND n = ${undefined} ${sql`AND z = ${3}`}`;
    expect(render(s, (t) => `${t}__shadow`)).toEqual({
      sql: 'UPDATE `t__shadow` SET `a` = ? WHERE id IN (?, ?) AND n = ? AND z = ?',
      params: ['x', '1', '2', null, 3],
    });
    expect(() => sql`${[]}`).toThrow(/empty list/);
    expect(() => identifier('a; drop')).toThrow(/identifier/);
  });

  it('tableProjection upserts the latest state and deletes', () => {
    const p = tableProjection({
      aggregateType: 'Customer',
      table: 'customers',
      columns: { name: 'state.name', v: 'metadata.version', f: (e) => e.eventType },
    });
    const ops = p.plan(
      [ev('a', 1), ev('a', 2), ev('b', 1), ev('c', 3, 'CustomerDeleted', null)]
        .map((d) => (d.ok ? d.event : null))
        .filter((e) => e !== null),
    );
    expect(ops).toHaveLength(2);
    expect(ops[1]).toMatchObject({
      op: 'upsert',
      columns: ['id', 'name', 'v', 'f', 'version'],
      rows: [
        ['a', 'n2', 2, 'CustomerRenamed', 2],
        ['b', 'n1', 1, 'CustomerRenamed', 1],
      ],
    });
    const soft = tableProjection({
      aggregateType: 'Customer',
      table: 'c',
      columns: {},
      delete: 'soft',
    });
    const del = soft.plan([
      (ev('c', 3, 'CustomerDeleted', null) as { event: DeliveredEvent }).event,
    ]);
    expect(del[0]?.op === 'statement' && render(del[0].statement).sql).toMatch(/SET `deleted` = 1/);
    expect(() =>
      tableProjection({ aggregateType: 'Customer', table: 'c', columns: { x: 'payload.x' } }),
    ).toThrow(/state\./);
    expect(() =>
      tableProjection({ aggregateType: 'Customer', table: 'bad name', columns: {} }),
    ).toThrow(/identifier/);
  });

  it('childTableProjection replaces the children', () => {
    const p = childTableProjection({
      aggregateType: 'Order',
      table: 'lines',
      parentKey: 'order_id',
      items: 'state.lines',
      columns: { line_id: 'item.lineId', s: 'state.status', k: (item) => item.lineId },
    });
    const e = ev('o', 2, 'OrderLineAdded', { id: 'o', status: 'open', lines: [{ lineId: 'l1' }] });
    const ops = p.plan([(e as { event: DeliveredEvent }).event]);
    expect(ops.map((o) => o.op)).toEqual(['statement', 'upsert']);
    expect(ops[1]).toMatchObject({ rows: [['o', 'l1', 'open', 'l1', 2]] });
  });

  it('checks projections against the catalog at start-up', () => {
    expect(() => {
      checkProjections(catalog, demoProjections);
    }).not.toThrow();
    const bad = [
      tableProjection({ aggregateType: 'Customer', table: 'c', columns: { x: 'state.nope' } }),
      tableProjection({ aggregateType: 'Nope', table: 'c', columns: {} }),
      defineProjection({ name: 'c', handles: ['Unknown'], tables: ['c'], apply: () => undefined }),
    ];
    expect(() => {
      checkProjections(catalog, bad);
    }).toThrow(/state.nope[\s\S]*Nope[\s\S]*twice[\s\S]*"Unknown"/);
    expect(requiredTables(demoProjections).map((t) => t.table)).toContain('order_summaries');
    const undeclared = defineProjection({
      name: 'u',
      handles: ['Customer'],
      tables: ['a'],
      apply: (_e, { table }) => sql`DELETE FROM ${table('b')}`,
    });
    expect(() => undeclared.plan([(ev('a', 1) as { event: DeliveredEvent }).event])).toThrow(
      /declares only a/,
    );
  });
});

describe('configuration and helpers', () => {
  const env = {
    KAFKA_BROKERS: 'a:1,b:2',
    SCHEMA_REGISTRY_URL: 'http://r',
    MYSQL_URL: 'mysql://u@h/db',
  };
  it('reads defaults and refuses bad values with advice', () => {
    const c = loadSinkConfig(env);
    expect(c).toMatchObject({
      kafkaBrokers: ['a:1', 'b:2'],
      mysqlUrl: 'mysql://u@h/db',
      groupId: 'cqrs-sync-sink',
      batchSize: 500,
      gapTimeoutMs: 60_000,
    });
    expect(() => loadSinkConfig({})).toThrow(/KAFKA_BROKERS/);
    expect(() => loadSinkConfig({ ...env, SINK_HEARTBEAT_INTERVAL_MS: '20000' })).toThrow(
      /about 3000/,
    );
    expect(() =>
      loadSinkConfig({ ...env, SINK_RETRY_INITIAL_MS: '9', SINK_RETRY_MAX_MS: '5' }),
    ).toThrow(/RETRY/);
  });

  it('names what the relay also has as the relay does; checks configs built in code too', () => {
    const c = loadSinkConfig({ ...env, LOG_LEVEL: 'debug' });
    expect(c).toMatchObject({
      logLevel: 'debug',
      stopGraceMs: 30_000,
      retryInitialMs: 200,
      retryMaxMs: 30_000,
      retryFactor: 2,
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(() => checkSinkConfig({ ...c, heartbeatIntervalMs: c.sessionTimeoutMs })).toThrow(
      /at most a third/,
    );
  });

  it('backs off exponentially with jitter, capped', async () => {
    const o = { initialMs: 100, maxMs: 1000, factor: 2 };
    expect(backoffDelay(1, o, () => 0)).toBe(50);
    expect(backoffDelay(3, o, () => 1)).toBe(400);
    expect(backoffDelay(30, o, () => 1)).toBe(1000);
    const ac = new AbortController();
    ac.abort();
    await sleep(10_000, ac.signal);
  });

  it('sorts MySQL errors into retriable and not', () => {
    expect(isRetriableSqlError({ errno: 1213 })).toBe(true);
    expect(isRetriableSqlError({ code: 'ECONNREFUSED' })).toBe(true);
    expect(isRetriableSqlError(null)).toBe(false);
    expect(classifyError({ errno: 1406, sqlState: '22001', message: 'too long' }).code).toBe(
      'constraint_violated',
    );
    expect(classifyError(new Error('x')).code).toBe('projection_failed');
  });

  it('splits migration scripts and checksums them', () => {
    expect(splitStatements('-- c\nCREATE TABLE a (x INT);\nCREATE TABLE b (y INT);\n')).toEqual([
      'CREATE TABLE a (x INT)',
      'CREATE TABLE b (y INT)',
    ]);
    expect(checksumOf({ version: 1, name: 'a', sql: 'X;\n' })).toBe(
      checksumOf({ version: 1, name: 'a', sql: ['X'] }),
    );
  });

  it('builds dead-letter headers', () => {
    const h = dltHeaders({
      record: {
        kind: 'dead',
        aggregateType: 'A',
        aggregateId: 'i',
        version: 1,
        eventId: 'e',
        eventType: 'E',
        topic: 't',
        partition: 2,
        offset: '7',
        key: null,
        value: null,
        headers: { k: 'v' },
        errorCode: 'x',
        errorMessage: 'm',
        attempts: 0,
        firstFailedAt: null,
        heldAt: new Date(0),
      },
      errorCode: 'x',
      errorMessage: 'm',
    });
    expect(h).toMatchObject({
      k: 'v',
      'cqrs-dlt-original-partition': '2',
      'cqrs-dlt-attempts': '1',
      'cqrs-dlt-first-failed-at': '1970-01-01T00:00:00.000Z',
    });
  });
});
