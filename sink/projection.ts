/**
 * The projection API: what users write against. A projection is a plain function from a delivered
 * event to parameterised statements; it never builds SQL from event data, and it names its tables
 * up front so the sink can check them against the database at start-up.
 *
 * - `defineProjection` — the general form: `apply(event, { sql, table })` returns statements written
 *   with the `sql` tagged template (interpolated values become `?` parameters; tables come from
 *   `table(name)`, an allow-list of the names the projection declared).
 * - `tableProjection` — the declarative shorthand for "one row per aggregate", version-gated.
 * - `childTableProjection` — "the rows of a collection in the aggregate's state", replaced as a whole
 *   at each version (order lines).
 *
 * The sink already gates every event by its aggregate's version (stale and duplicate events never
 * reach a projection); the row-level `version` column of the shorthands is a second, local guard.
 */
import type { EventMetadata } from '../schemas/envelope.js';
import { PipelineError } from '../schemas/errors.js';
import { quoteIdentifier } from './sql.js';

/** One event as a projection sees it. */
export interface DeliveredEvent<
  P extends Record<string, unknown> = Record<string, unknown>,
  S extends Record<string, unknown> = Record<string, unknown>,
> {
  readonly metadata: EventMetadata;
  readonly eventType: string;
  readonly payload: P;
  /** The aggregate's state after the event; null after a deleting event. */
  readonly state: S | null;
  /** True when the catalog declares the event as deleting its aggregate. */
  readonly deletes: boolean;
  readonly source: { readonly topic: string; readonly partition: number; readonly offset: string };
  /** A `verify --repair` event (verify/repair.ts): the sink rebuilds the aggregate's owned rows
   * from its state, even at the version it has. */
  readonly repair?: boolean;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function isIdentifier(name: string): boolean {
  return IDENTIFIER.test(name);
}

/** A table named by a projection, resolved to a physical name when executed (shadow rebuilds). */
export interface TableRef {
  readonly kind: 'table';
  readonly name: string;
}

/** A column or other identifier written by the projection's author (never event data). */
export interface IdentifierRef {
  readonly kind: 'identifier';
  readonly name: string;
}

/** A parameterised statement. `fragments` hold SQL text (with `?`) and table references. */
export interface Statement {
  readonly kind: 'statement';
  readonly fragments: readonly (string | TableRef | IdentifierRef)[];
  readonly params: readonly unknown[];
}

export type SqlValue =
  | string
  | number
  | bigint
  | boolean
  | Date
  | Buffer
  | null
  | undefined
  | TableRef
  | IdentifierRef
  | Statement
  | readonly (string | number | bigint | boolean | Date | null)[];

function isRef(v: unknown): v is TableRef | IdentifierRef | Statement {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Buffer.isBuffer(v)) return false;
  const kind = (v as { kind?: unknown }).kind;
  return kind === 'table' || kind === 'identifier' || kind === 'statement';
}

/**
 * The tagged template: ``sql`UPDATE ${table('t')} SET name = ${e.state?.name} WHERE id = ${id}` ``.
 * Values become parameters; arrays become `?, ?, ?` lists (for `IN (…)`); `undefined` becomes NULL;
 * nested statements are spliced in.
 */
export function sql(strings: TemplateStringsArray, ...values: SqlValue[]): Statement {
  const fragments: (string | TableRef | IdentifierRef)[] = [];
  const params: unknown[] = [];
  let text = strings[0] ?? '';
  values.forEach((v, i) => {
    if (isRef(v)) {
      if (v.kind === 'statement') {
        for (const f of v.fragments) {
          if (typeof f === 'string') text += f;
          else {
            fragments.push(text, f);
            text = '';
          }
        }
        params.push(...v.params);
      } else {
        fragments.push(text, v);
        text = '';
      }
    } else if (Array.isArray(v)) {
      if (v.length === 0) {
        throw new PipelineError('projection_failed', 'sql: an empty list cannot be a parameter', {
          retriable: false,
        });
      }
      text += v.map(() => '?').join(', ');
      params.push(...(v as unknown[]));
    } else {
      text += '?';
      params.push(v === undefined ? null : v);
    }
    text += strings[i + 1] ?? '';
  });
  fragments.push(text);
  return { kind: 'statement', fragments: fragments.filter((f) => f !== ''), params };
}

/** An identifier (column name) written by the author; checked against `[A-Za-z_][A-Za-z0-9_]*`. */
export function identifier(name: string): IdentifierRef {
  if (!isIdentifier(name)) {
    throw new PipelineError('config_invalid', `"${name}" is not a plain SQL identifier`, {
      retriable: false,
    });
  }
  return { kind: 'identifier', name };
}

/** Renders a statement to SQL text with quoted identifiers; `physical` maps table names (shadow). */
export function render(
  s: Statement,
  physical: (table: string) => string = (t) => t,
): { sql: string; params: unknown[] } {
  const text = s.fragments
    .map((f) =>
      typeof f === 'string' ? f : quoteIdentifier(f.kind === 'table' ? physical(f.name) : f.name),
    )
    .join('');
  return { sql: text, params: [...s.params] };
}

/** Operations a projection plans; the executor merges consecutive compatible upserts into one. */
export type Operation =
  | { readonly op: 'statement'; readonly statement: Statement }
  | {
      readonly op: 'upsert';
      readonly table: string;
      readonly columns: readonly string[];
      /** Rows of values in `columns` order. */
      readonly rows: readonly (readonly unknown[])[];
      /** When set, an existing row is overwritten only by a higher version. */
      readonly versionColumn: string | undefined;
    };

export interface ProjectionContext {
  readonly sql: typeof sql;
  /** A table this projection declared; anything else is a configuration error. */
  readonly table: (name: string) => TableRef;
  readonly identifier: (name: string) => IdentifierRef;
}

/** What the sink checks against the database at start-up. */
export interface TableRequirement {
  readonly table: string;
  readonly columns: readonly string[];
  readonly where: string;
}

/**
 * Rows a projection keeps for one aggregate: those of `table` whose `key` column holds the aggregate
 * id. `cqrs-sync verify` compares them with what the projection makes of the aggregate's state and
 * finds rows with no aggregate; a repair event rebuilds them.
 */
export interface RowOwnership {
  readonly aggregateType: string;
  readonly table: string;
  readonly key: string;
  /** Soft deletes: a deleted aggregate's row stays, with this column set. */
  readonly deletedColumn?: string;
}

/** A compiled projection; build one with `defineProjection`, `tableProjection` or `childTableProjection`. */
export interface Projection {
  readonly name: string;
  /** Event types or aggregate types (= all of its events) this projection handles. */
  readonly handles: readonly string[];
  readonly tables: readonly TableRequirement[];
  /**
   * `'state'`: the rows depend only on the aggregate's latest event, so within a batch only the last
   * applied event per aggregate is planned (the declarative shorthands). `'event'`: every event is
   * planned, in order.
   */
  readonly mode: 'state' | 'event';
  plan(events: readonly DeliveredEvent[]): Operation[];
  /** Rows it keeps per aggregate (the shorthands declare theirs; a general projection's `owns`). */
  readonly owns?: readonly RowOwnership[];
  /** Checks against the catalog, e.g. that `state.x` paths exist. Returns problems. */
  check?(stateFields: (aggregateType: string) => readonly string[] | undefined): string[];
}

export interface ProjectionDefinition {
  readonly name: string;
  readonly handles: readonly string[];
  /** Every table the projection writes or reads; columns listed here are checked at start-up. */
  readonly tables: readonly (
    string | { readonly name: string; readonly columns?: readonly string[] }
  )[];
  readonly apply: (
    event: DeliveredEvent,
    ctx: ProjectionContext,
  ) => Statement | readonly Statement[] | undefined | null;
  /** Rows kept per aggregate (e.g. `{ aggregateType: 'Order', table: 'order_summaries', key:
   * 'order_id' }`), for `cqrs-sync verify`; tables only read or shared are left out. */
  readonly owns?: readonly RowOwnership[];
}

/** The general form. Statements run in the event's transaction, in the order returned. */
export function defineProjection(def: ProjectionDefinition): Projection {
  const tables = def.tables.map((t) =>
    typeof t === 'string' ? { table: t, columns: [] } : { table: t.name, columns: t.columns ?? [] },
  );
  const allowed = new Set(tables.map((t) => t.table));
  const where = `projection "${def.name}"`;
  const ctx: ProjectionContext = {
    sql,
    identifier,
    table: (name) => {
      if (!allowed.has(name)) {
        throw new PipelineError(
          'config_invalid',
          `${where} uses table "${name}" but declares only ${[...allowed].join(', ')}: add it to tables`,
          { retriable: false },
        );
      }
      return { kind: 'table', name };
    },
  };
  return {
    name: def.name,
    handles: def.handles,
    mode: 'event',
    tables: tables.map((t) => ({ ...t, where })),
    ...(def.owns ? { owns: def.owns } : {}),
    plan: (events) =>
      events.flatMap((e) => {
        const out = def.apply(e, ctx);
        const list: readonly Statement[] = out == null ? [] : 'kind' in out ? [out] : out;
        return list.map((statement) => ({ op: 'statement' as const, statement }));
      }),
  };
}

/** A column's source: `'state.field'`, `'metadata.version'` etc., or a function of the event. */
export type ColumnSource = string | ((e: DeliveredEvent) => unknown);

function pathGetter(path: string, where: string): (e: DeliveredEvent) => unknown {
  const [root, ...rest] = path.split('.');
  if ((root !== 'state' && root !== 'metadata') || rest.length === 0) {
    throw new PipelineError(
      'config_invalid',
      `${where}: "${path}" must start with "state." or "metadata." (use a function for anything else)`,
      { retriable: false },
    );
  }
  return (e) => {
    let v: unknown = root === 'state' ? e.state : e.metadata;
    for (const k of rest) v = v == null ? undefined : (v as Record<string, unknown>)[k];
    return v;
  };
}

function stateFieldProblems(
  sources: Readonly<Record<string, ColumnSource>>,
  aggregateType: string,
  fieldsOf: (aggregateType: string) => readonly string[] | undefined,
  where: string,
): string[] {
  const fields = fieldsOf(aggregateType);
  if (!fields) return [`${where}: aggregate type "${aggregateType}" is not in the catalog`];
  const problems: string[] = [];
  for (const [col, src] of Object.entries(sources)) {
    if (typeof src !== 'string' || !src.startsWith('state.')) continue;
    const field = src.split('.')[1] ?? '';
    if (!fields.includes(field)) {
      problems.push(
        `${where}: column ${col} reads "${src}" but ${aggregateType}'s state has ${fields.join(', ')}`,
      );
    }
  }
  return problems;
}

function checkIdentifiers(names: readonly string[], where: string): void {
  const bad = names.filter((n) => !isIdentifier(n));
  if (bad.length > 0) {
    throw new PipelineError(
      'config_invalid',
      `${where}: ${bad.map((b) => `"${b}"`).join(', ')} not plain SQL identifiers`,
      { retriable: false },
    );
  }
}

/** Last event per aggregate, in first-seen order. */
function lastPerAggregate(events: readonly DeliveredEvent[]): DeliveredEvent[] {
  const last = new Map<string, DeliveredEvent>();
  for (const e of events) {
    const k = `${e.metadata.aggregateType}\u0000${e.metadata.aggregateId}`;
    last.delete(k);
    last.set(k, e);
  }
  return [...last.values()];
}

/** An aggregate type by name, or its definition (`TaskType`): the definition saves restating it. */
export type AggregateTypeRef = string | { readonly type: string };

function typeName(ref: AggregateTypeRef): string {
  return typeof ref === 'string' ? ref : ref.type;
}

export interface TableProjectionOptions {
  readonly aggregateType: AggregateTypeRef;
  readonly table: string;
  /** Primary-key column; its value is the aggregate id. Default `id`. */
  readonly key?: string;
  readonly columns: Readonly<Record<string, ColumnSource>>;
  /** Column holding the aggregate version of the row. Default `version`. */
  readonly versionColumn?: string;
  /** `hard` deletes the row; `soft` sets `deletedColumn` (default `deleted`) to 1. Default `hard`. */
  readonly delete?: 'hard' | 'soft';
  readonly deletedColumn?: string;
  /** Default `<table>`. */
  readonly name?: string;
}

/**
 * One row per aggregate, like Kafka Connect's JDBC sink in upsert mode, but version-gated: every
 * event of `aggregateType` upserts the row (all columns), a deleting event deletes it (hard) or
 * flags it (soft). An existing row is only overwritten by a higher version.
 */
export function tableProjection(o: TableProjectionOptions): Projection {
  const name = o.name ?? o.table;
  const where = `tableProjection "${name}"`;
  const key = o.key ?? 'id';
  const versionColumn = o.versionColumn ?? 'version';
  const deletedColumn = o.deletedColumn ?? 'deleted';
  const soft = o.delete === 'soft';
  const valueColumns = Object.keys(o.columns);
  const getters = valueColumns.map((c) => {
    const src = o.columns[c];
    return typeof src === 'function' ? src : pathGetter(src ?? '', `${where}.columns.${c}`);
  });
  const columns = [key, ...valueColumns, ...(soft ? [deletedColumn] : []), versionColumn];
  checkIdentifiers([o.table, ...columns], where);
  const table: TableRef = { kind: 'table', name: o.table };
  return {
    name,
    handles: [typeName(o.aggregateType)],
    mode: 'state',
    tables: [{ table: o.table, columns, where }],
    owns: [
      {
        aggregateType: typeName(o.aggregateType),
        table: o.table,
        key,
        ...(soft ? { deletedColumn } : {}),
      },
    ],
    check: (fieldsOf) => stateFieldProblems(o.columns, typeName(o.aggregateType), fieldsOf, where),
    plan: (events) => {
      const ops: Operation[] = [];
      const rows: unknown[][] = [];
      for (const e of lastPerAggregate(events)) {
        const id = e.metadata.aggregateId;
        const v = e.metadata.version;
        if (e.deletes || e.state === null) {
          ops.push({
            op: 'statement',
            statement: soft
              ? sql`UPDATE ${table} SET ${identifier(deletedColumn)} = 1, ${identifier(versionColumn)} = ${v} WHERE ${identifier(key)} = ${id} AND ${identifier(versionColumn)} < ${v}`
              : sql`DELETE FROM ${table} WHERE ${identifier(key)} = ${id} AND ${identifier(versionColumn)} < ${v}`,
          });
        } else {
          rows.push([id, ...getters.map((g) => g(e) ?? null), ...(soft ? [0] : []), v]);
        }
      }
      if (rows.length > 0) ops.push({ op: 'upsert', table: o.table, columns, rows, versionColumn });
      return ops;
    },
  };
}

export interface ChildTableProjectionOptions {
  readonly aggregateType: AggregateTypeRef;
  readonly table: string;
  /** Column holding the aggregate id. */
  readonly parentKey: string;
  /** The collection: `'state.lines'` or a function returning the items. */
  readonly items: ColumnSource;
  /** Columns from each item: `'item.field'`, `'state.x'`, `'metadata.x'` or `(item, e) => value`. */
  readonly columns: Readonly<
    Record<string, string | ((item: Record<string, unknown>, e: DeliveredEvent) => unknown)>
  >;
  /** Default `version`. */
  readonly versionColumn?: string;
  /** Default `<table>`. */
  readonly name?: string;
}

/**
 * The rows of a collection in the aggregate's state (order lines): at each version the aggregate's
 * child rows are replaced as a whole, so removed items disappear; a deleting event removes them all.
 */
export function childTableProjection(o: ChildTableProjectionOptions): Projection {
  const name = o.name ?? o.table;
  const where = `childTableProjection "${name}"`;
  const versionColumn = o.versionColumn ?? 'version';
  const itemsOf = typeof o.items === 'function' ? o.items : pathGetter(o.items, `${where}.items`);
  const valueColumns = Object.keys(o.columns);
  const getters = valueColumns.map((c) => {
    const src = o.columns[c];
    const at = `${where}.columns.${c}`;
    if (typeof src === 'function') return src;
    const s = src ?? '';
    if (s.startsWith('item.')) {
      const field = s.slice('item.'.length);
      return (item: Record<string, unknown>) => item[field];
    }
    const g = pathGetter(s, at);
    return (_item: Record<string, unknown>, e: DeliveredEvent) => g(e);
  });
  const columns = [o.parentKey, ...valueColumns, versionColumn];
  checkIdentifiers([o.table, ...columns], where);
  const table: TableRef = { kind: 'table', name: o.table };
  const itemsSource: Record<string, ColumnSource> =
    typeof o.items === 'string' ? { items: o.items } : {};
  return {
    name,
    handles: [typeName(o.aggregateType)],
    mode: 'state',
    tables: [{ table: o.table, columns, where }],
    owns: [{ aggregateType: typeName(o.aggregateType), table: o.table, key: o.parentKey }],
    check: (fieldsOf) =>
      stateFieldProblems(itemsSource, typeName(o.aggregateType), fieldsOf, where),
    plan: (events) => {
      const last = lastPerAggregate(events);
      if (last.length === 0) return [];
      const ids = last.map((e) => e.metadata.aggregateId);
      const ops: Operation[] = [
        {
          op: 'statement',
          statement: sql`DELETE FROM ${table} WHERE ${identifier(o.parentKey)} IN (${ids})`,
        },
      ];
      const rows: unknown[][] = [];
      for (const e of last) {
        if (e.deletes || e.state === null) continue;
        const items = itemsOf(e);
        if (!Array.isArray(items)) continue;
        for (const item of items as Record<string, unknown>[]) {
          rows.push([
            e.metadata.aggregateId,
            ...getters.map((g) => g(item, e) ?? null),
            e.metadata.version,
          ]);
        }
      }
      if (rows.length > 0)
        ops.push({ op: 'upsert', table: o.table, columns, rows, versionColumn: undefined });
      return ops;
    },
  };
}
