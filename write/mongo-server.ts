import type { Collection, Db } from 'mongodb';

/**
 * Which MongoDB answers: a real `mongod` (or `mongos`), or the mongo-java-server stand-in the test
 * harness runs when no mongod is given. The stand-in serves a query from an index only when the
 * query's fields are exactly a *unique* index's fields (it ignores other indexes), so our
 * conditional writes (`{_id, version}`, `{_id, relayFence}`) get unique indexes of exactly those
 * fields there — and only there: on a real server `_id` finds the document and these indexes would
 * only cost writes. See docs/write.md, "The stand-in".
 */
export type MongoKind = 'mongod' | 'stand-in';

/** A real server's `buildInfo` always carries `gitVersion`; the stand-in's never does. */
export async function mongoKind(db: Db): Promise<MongoKind> {
  const info = await db.admin().command({ buildInfo: 1 });
  return typeof info.gitVersion === 'string' ? 'mongod' : 'stand-in';
}

/** The write side's only index: its conditional write `{_id, version}` (stand-in only). The
 * relay's indexes on the same collections are the relay's (relay/mongo-indexes.ts). */
export async function ensureWriteIndexes(collection: Collection, kind: MongoKind): Promise<void> {
  if (kind !== 'stand-in') return;
  await collection.createIndex(
    { _id: 1, version: 1 },
    { unique: true, name: 'stand_in_id_version' },
  );
}
