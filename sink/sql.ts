/**
 * The one SQL helper of the sink: identifier quoting, the connection shape the table modules run
 * their statements on, and the batching they share. SQL on the sink's own tables lives in
 * `sink/tables/`, one module per table; nothing else writes it.
 */

/** A MySQL identifier quoted for SQL text: backticks around it, a backtick inside doubled. */
export const quoteIdentifier = (name: string): string => `\`${name.replace(/`/g, '``')}\``;

/** A pool or one of its connections (in a transaction): what a table module's statements run on. */
export interface Queryable {
  query(sql: string, values?: unknown): Promise<[unknown, unknown]>;
}

/** Runs one statement and returns its rows (or its result header, for writes). */
export async function rowsOf<T = Record<string, unknown>>(
  db: Queryable,
  sql: string,
  values?: unknown,
): Promise<T[]> {
  const [rows] = await db.query(sql, values);
  return rows as T[];
}

/** Keys after `after` (null: from the first) up to `upTo` included (null: to the last). */
export interface KeyRange {
  readonly after: string | null;
  readonly upTo: string | null;
}

/** `column > after AND column <= upTo` (either side left out when null; `TRUE` when both are) and
 * its parameters. */
export function inKeyRange(column: string, r: KeyRange): { where: string; params: string[] } {
  const parts: string[] = [];
  const params: string[] = [];
  if (r.after !== null) {
    parts.push(`${quoteIdentifier(column)} > ?`);
    params.push(r.after);
  }
  if (r.upTo !== null) {
    parts.push(`${quoteIdentifier(column)} <= ?`);
    params.push(r.upTo);
  }
  return { where: parts.length > 0 ? parts.join(' AND ') : 'TRUE', params };
}

/** Slices of at most `size` items: statements stay under MySQL's placeholder and packet limits. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** MySQL's duplicate-key error (ER_DUP_ENTRY). */
export const isDuplicateKey = (e: unknown): boolean => (e as { errno?: number }).errno === 1062;

/** A string column as mysql2 returns it: a string, or a Buffer under a binary collation. */
export const text = (v: unknown): string => {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return Buffer.isBuffer(v) ? v.toString('utf8') : '';
};
export const textOrNull = (v: unknown): string | null =>
  v === null || v === undefined ? null : text(v);
/**
 * SQL for a DATETIME column's milliseconds since the epoch. The sink writes its DATETIMEs in UTC (a
 * `+00:00` session, UTC parameters); arithmetic from the epoch reads them as UTC in any session,
 * where `UNIX_TIMESTAMP` would read them in the session's time zone.
 */
export const epochMs = (column: string): string =>
  `(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ${column}) DIV 1000)`;
/** A numeric column (BIGINTs come as strings); NULL is 0. */
export const num = (v: unknown): number => Number(v ?? 0);
