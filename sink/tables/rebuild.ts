/**
 * Statements on a set of tables at once (the projections' and the sink's), for rebuilds: empty them
 * in place, or build `<table><suffix>` copies and swap them in with one atomic RENAME.
 */
import { quoteIdentifier as q, type Queryable } from '../sql.js';

export async function emptyTables(db: Queryable, tables: readonly string[]): Promise<void> {
  for (const t of tables) await db.query(`DELETE FROM ${q(t)}`);
}

/** Fresh, empty copies `<table><suffix>` (dropped first when left from an earlier run). */
export async function createShadows(
  db: Queryable,
  tables: readonly string[],
  suffix: string,
): Promise<void> {
  for (const t of tables) {
    await db.query(`DROP TABLE IF EXISTS ${q(t + suffix)}`);
    await db.query(`CREATE TABLE ${q(t + suffix)} LIKE ${q(t)}`);
  }
}

/** The copies replace the tables in one RENAME: readers see the old tables or the new, never a
 * mix. The old ones are dropped. */
export async function swapInShadows(
  db: Queryable,
  tables: readonly string[],
  suffix: string,
): Promise<void> {
  const renames = tables.flatMap((t) => [
    `${q(t)} TO ${q(`${t}__old`)}`,
    `${q(t + suffix)} TO ${q(t)}`,
  ]);
  for (const t of tables) await db.query(`DROP TABLE IF EXISTS ${q(`${t}__old`)}`);
  await db.query(`RENAME TABLE ${renames.join(', ')}`);
  for (const t of tables) await db.query(`DROP TABLE IF EXISTS ${q(`${t}__old`)}`);
}
