import type { Collection } from 'mongodb';
import { PENDING_MARKER } from '../schemas/outbox-entry.js';
import type { MongoKind } from '../write/mongo-server.js';

/**
 * The relay's indexes on each aggregate collection, created here and nowhere else (docs/relay.md,
 * "Indexes"): the scan's marker (documents with a pending entry, in `_id` order), and on the
 * stand-in its fenced mark `{_id, relayFence}`. The write side creates only its own conditional
 * write's index (write/mongo-server.ts) and never one of these, so no start of either process
 * changes the other's.
 */
export async function ensureRelayIndexes(collection: Collection, kind: MongoKind): Promise<void> {
  await collection.createIndex({ ...PENDING_MARKER_KEY, _id: 1 }, { name: RELAY_INDEXES.pending });
  if (kind !== 'stand-in') return;
  await collection.createIndex(
    { _id: 1, relayFence: 1 },
    { unique: true, name: RELAY_INDEXES.standInFence },
  );
}

/** Names of the relay's indexes. */
export const RELAY_INDEXES = {
  pending: 'relay_pending',
  standInFence: 'stand_in_id_relay_fence',
} as const;

const PENDING_MARKER_KEY = Object.fromEntries(Object.keys(PENDING_MARKER).map((k) => [k, 1]));
