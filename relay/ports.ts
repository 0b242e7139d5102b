import type { OutboxFailure } from '../schemas/outbox-entry.js';

/** Where the scan continues: after this aggregate document. */
export interface ScanKey {
  readonly aggregateType: string;
  readonly aggregateId: string;
}

/** An outbox entry as read: unchecked (a bad entry must not crash the relay). */
export interface RawEntry {
  readonly [field: string]: unknown;
}

/** What became of an earlier version of an aggregate. */
export type VersionStatus = 'pending' | 'relayed' | 'skipped' | 'failed' | 'absent';

/** Where an entry lives: its aggregate's document, as the scan read it. */
export interface EntryRef {
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** The entry's event id; undefined when the entry is too malformed to have one. */
  readonly eventId: string | undefined;
  /** Its version (0 when it has none). */
  readonly version: number;
  /** Its place in the document's outbox (stable: only the fence holder removes entries). */
  readonly index: number;
  /** The document's `relayFence` when read: marks are conditional on it. */
  readonly fence: number;
  /** Entries of the same document an operator skipped: removed with the next mark. */
  readonly skipped: readonly { readonly eventId: string; readonly version: number }[];
}

export interface ScannedEntry {
  readonly raw: RawEntry;
  readonly ref: EntryRef;
  /** Its version's predecessor, read in the same document read (version 1: `relayed`). */
  readonly previous: VersionStatus;
  /** The aggregate has a failed entry: it is held. */
  readonly held: boolean;
}

export interface ScanPage {
  /** Pending entries of whole documents, in (type, id, version) order. */
  readonly entries: readonly ScannedEntry[];
  /** Where the next page starts; undefined after the last one. */
  readonly next: ScanKey | undefined;
}

/** A change feed of the aggregate collections' writes: only a wake-up signal, the scan reads the entries. */
export interface ChangeFeedHandlers {
  /** Something was inserted (or the feed restarted): scan. */
  readonly onChange: () => void;
  /** Any change came, the relay's own marks too: the feed (and the token it resumed from) works. */
  readonly onActivity: () => void;
  /** A new resume token (after a batch, or the post-batch token while idle). */
  readonly onToken: (token: unknown) => void;
  /** The feed failed; `historyLost` when its resume token is unknown or too old. */
  readonly onError: (error: unknown, historyLost: boolean) => void;
}

export interface ChangeFeed {
  close(): Promise<void>;
}

export interface Backlog {
  readonly pending: number;
  readonly oldest: Date | undefined;
}

/** The outbox (the aggregate documents' unrelayed entries), as the relay sees it. */
export interface OutboxSource {
  /** Creates the scan's index (idempotent). */
  ensureIndexes(): Promise<void>;
  /** Pending entries of about `limit` entries' worth of documents after `after`. */
  scanPending(after: ScanKey | undefined, limit: number): Promise<ScanPage>;
  /** Aggregates with a failed entry (`Type/id`): they are held. */
  heldAggregates(): Promise<string[]>;
  /** Unrelayed (pending) entries and when the oldest of them occurred: the relay's backlog. */
  backlog(): Promise<Backlog>;
  /** Removes the entries from their documents' outboxes, with the documents' skipped entries,
   * unless a relay with a newer fencing token changed the document. Returns how many it removed. */
  markRelayed(refs: readonly EntryRef[], fence: number): Promise<number>;
  /** Marks the entry failed (its aggregate is held), with the same fencing. */
  markFailed(ref: EntryRef, failure: OutboxFailure, fence: number): Promise<void>;
  /** `retry`: failed entries of the aggregate become pending again (and may pass a version gap);
   * `skip`: they become `skipped` and are never published. Returns how many entries changed. */
  release(aggregateId: string, mode: 'retry' | 'skip', aggregateType?: string): Promise<number>;
  /** Opens a feed of inserts, resuming after `resumeToken` if given. Resolves once it is open. */
  watch(resumeToken: unknown, handlers: ChangeFeedHandlers): Promise<ChangeFeed>;
  /** True for a feed error meaning the resume token is unknown, corrupted or too old. */
  isHistoryLost(error: unknown): boolean;
  loadResumeToken(): Promise<unknown>;
  saveResumeToken(token: unknown): Promise<void>;
}

/** One record to publish. */
export interface OutgoingRecord {
  readonly topic: string;
  readonly key: string;
  readonly value: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

export interface EventPublisher {
  /** Creates missing topics (compacted). */
  ensureTopics(topics: readonly string[]): Promise<void>;
  /** Resolves once the broker acknowledged every record (acks=all); records of one key keep order. */
  publish(records: readonly OutgoingRecord[]): Promise<void>;
  close(): Promise<void>;
}

/** A held lease: `token` is the fencing token (grows with every takeover). */
export interface Lease {
  readonly owner: string;
  readonly token: number;
}

export interface LeaseStore {
  /** Takes the lease if it is free, expired or already ours; undefined when another owner holds it. */
  tryAcquire(owner: string, ttlMs: number): Promise<Lease | undefined>;
  /** Extends it; false when it was taken over. */
  renew(lease: Lease, ttlMs: number): Promise<boolean>;
  /** True while `lease` is still the current one. */
  isCurrent(lease: Lease): Promise<boolean>;
  /** Gives it up at once (a standby takes over without waiting for the TTL). */
  release(lease: Lease): Promise<void>;
}

/** Small key-value state: snapshot checkpoints. */
export interface CheckpointStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
}
