import type { OutboxFailure } from '../write/outbox.js';

/** Where the scan continues: after this (aggregateId, version). */
export interface ScanKey {
  readonly aggregateId: string;
  readonly version: number;
}

/** An outbox document as read: unchecked (a bad entry must not crash the relay). */
export interface RawEntry {
  readonly _id: unknown;
  readonly [field: string]: unknown;
}

/** What the relay needs to know of an earlier version of an aggregate. */
export type VersionStatus = 'pending' | 'relayed' | 'skipped' | 'failed' | 'absent';

/** A change feed of outbox inserts: only a wake-up signal, the scan reads the entries. */
export interface ChangeFeedHandlers {
  /** Something was inserted (or the feed restarted): scan. */
  readonly onChange: () => void;
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

/** The outbox, as the relay sees it. */
export interface OutboxSource {
  ensureIndexes(retentionMs: number): Promise<void>;
  /** Pending entries after `after`, in (aggregateId, version) order. */
  scanPending(after: ScanKey | undefined, limit: number): Promise<RawEntry[]>;
  /** Aggregates with a failed entry: they are held. */
  heldAggregates(): Promise<string[]>;
  /** Unrelayed (pending) entries and when the oldest of them occurred: the relay's backlog. */
  backlog(): Promise<Backlog>;
  versionStatus(aggregateId: string, version: number): Promise<VersionStatus>;
  /** Marks entries relayed unless a relay with a newer fencing token touched them. Returns the count. */
  markRelayed(ids: readonly unknown[], fence: number): Promise<number>;
  markFailed(id: unknown, failure: OutboxFailure, fence: number): Promise<void>;
  /** `retry`: failed entries of the aggregate become pending again (and may pass a version gap);
   * `skip`: they become `skipped` and are never published. Returns how many entries changed. */
  release(aggregateId: string, mode: 'retry' | 'skip'): Promise<number>;
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
