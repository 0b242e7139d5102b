import type { Collection, Db } from 'mongodb';
import { PENDING_MARKER } from '../schemas/outbox-entry.js';

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

/** The write side's index: its conditional write `{_id, version}` (stand-in only). */
export async function ensureWriteIndexes(collection: Collection, kind: MongoKind): Promise<void> {
  if (kind !== 'stand-in') return;
  await collection.createIndex(
    { _id: 1, version: 1 },
    { unique: true, name: 'stand_in_id_version' },
  );
}

/**
 * The relay's indexes: the scan's marker (documents with a pending entry, in `_id` order), and on
 * the stand-in its fenced mark `{_id, relayFence}`.
 */
export async function ensureRelayIndexes(collection: Collection, kind: MongoKind): Promise<void> {
  await collection.createIndex({ ...PENDING_MARKER_KEY, _id: 1 }, { name: 'relay_pending' });
  if (kind !== 'stand-in') return;
  await collection.createIndex(
    { _id: 1, relayFence: 1 },
    { unique: true, name: 'stand_in_id_relay_fence' },
  );
}

const PENDING_MARKER_KEY = Object.fromEntries(Object.keys(PENDING_MARKER).map((k) => [k, 1]));
