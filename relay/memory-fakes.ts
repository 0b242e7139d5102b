/** In-memory adapters of the relay's ports, for unit tests of the relay's logic (no I/O). */
import type { OutboxFailure } from '../write/outbox.js';
import type {
  Backlog,
  ChangeFeed,
  ChangeFeedHandlers,
  CheckpointStore,
  EventPublisher,
  Lease,
  LeaseStore,
  OutboxSource,
  OutgoingRecord,
  RawEntry,
  ScanKey,
  VersionStatus,
} from './ports.js';

type Doc = Record<string, unknown> & { _id: unknown };

export class MemoryOutbox implements OutboxSource {
  readonly docs: Doc[] = [];
  token: unknown;
  handlers: ChangeFeedHandlers | undefined;
  /** Makes the next `watch` with a token fail as history lost. */
  historyLost = false;
  failScans = 0;

  insert(...docs: Record<string, unknown>[]): void {
    for (const d of docs) this.docs.push({ ...d, _id: d._id });
    this.handlers?.onChange();
  }

  ensureIndexes(): Promise<void> {
    return Promise.resolve();
  }

  scanPending(after: ScanKey | undefined, limit: number): Promise<RawEntry[]> {
    if (this.failScans > 0) {
      this.failScans--;
      return Promise.reject(new Error('scan failed'));
    }
    const key = (d: Doc): [string, number] => [
      typeof d.aggregateId === 'string' ? d.aggregateId : '',
      typeof d.version === 'number' ? d.version : 0,
    ];
    const cmp = (a: [string, number], b: [string, number]): number =>
      a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1];
    const rows = this.docs
      .filter((d) => d.status === 'pending')
      .filter((d) => !after || cmp(key(d), [after.aggregateId, after.version]) > 0)
      .sort((a, b) => cmp(key(a), key(b)))
      .slice(0, limit)
      .map((d) => ({ ...d }));
    return Promise.resolve(rows);
  }

  heldAggregates(): Promise<string[]> {
    return Promise.resolve([
      ...new Set(
        this.docs
          .filter((d) => d.status === 'failed' && typeof d.aggregateId === 'string')
          .map((d) => d.aggregateId as string),
      ),
    ]);
  }

  backlog(): Promise<Backlog> {
    const pending = this.docs.filter((d) => d.status === 'pending');
    const times = pending
      .map((d) => d.occurredAt)
      .filter((t): t is Date => t instanceof Date)
      .map((t) => t.getTime());
    return Promise.resolve({
      pending: pending.length,
      oldest: times.length > 0 ? new Date(Math.min(...times)) : undefined,
    });
  }

  versionStatus(aggregateId: string, version: number): Promise<VersionStatus> {
    const d = this.docs.find((x) => x.aggregateId === aggregateId && x.version === version);
    return Promise.resolve(d ? (d.status as VersionStatus) : 'absent');
  }

  markRelayed(ids: readonly unknown[], fence: number): Promise<number> {
    let n = 0;
    for (const d of this.docs) {
      if (
        ids.includes(d._id) &&
        d.status === 'pending' &&
        ((d.fence as number | undefined) ?? 0) <= fence
      ) {
        d.status = 'relayed';
        d.relayedAt = new Date();
        d.fence = fence;
        n++;
      }
    }
    return Promise.resolve(n);
  }

  markFailed(id: unknown, failure: OutboxFailure, fence: number): Promise<void> {
    const d = this.docs.find((x) => x._id === id && x.status === 'pending');
    if (d) Object.assign(d, { status: 'failed', failure, fence });
    return Promise.resolve();
  }

  release(aggregateId: string, mode: 'retry' | 'skip'): Promise<number> {
    let n = 0;
    for (const d of this.docs) {
      if (d.aggregateId === aggregateId && d.status === 'failed') {
        Object.assign(
          d,
          mode === 'retry' ? { status: 'pending', releasedAt: new Date() } : { status: 'skipped' },
        );
        n++;
      }
    }
    return Promise.resolve(n);
  }

  watch(resumeToken: unknown, handlers: ChangeFeedHandlers): Promise<ChangeFeed> {
    if (resumeToken && this.historyLost) {
      this.historyLost = false;
      return Promise.reject(Object.assign(new Error('history lost'), { code: 286 }));
    }
    this.handlers = handlers;
    handlers.onToken({ t: this.docs.length });
    return Promise.resolve({
      close: () => {
        this.handlers = undefined;
        return Promise.resolve();
      },
    });
  }

  isHistoryLost(error: unknown): boolean {
    return (error as { code?: unknown }).code === 286;
  }

  loadResumeToken(): Promise<unknown> {
    return Promise.resolve(this.token);
  }

  saveResumeToken(token: unknown): Promise<void> {
    this.token = token ?? undefined;
    return Promise.resolve();
  }
}

export class MemoryPublisher implements EventPublisher {
  readonly records: OutgoingRecord[] = [];
  failures = 0;
  topics: readonly string[] = [];

  ensureTopics(topics: readonly string[]): Promise<void> {
    this.topics = topics;
    return Promise.resolve();
  }

  publish(records: readonly OutgoingRecord[]): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(new Error('broker down'));
    }
    this.records.push(...records);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class MemoryLeases implements LeaseStore {
  owner: string | undefined;
  token = 0;
  expiresAt = 0;

  tryAcquire(owner: string, ttlMs: number): Promise<Lease | undefined> {
    if (this.owner !== undefined && this.owner !== owner && this.expiresAt > Date.now()) {
      return Promise.resolve(undefined);
    }
    this.owner = owner;
    this.token++;
    this.expiresAt = Date.now() + ttlMs;
    return Promise.resolve({ owner, token: this.token });
  }

  renew(lease: Lease, ttlMs: number): Promise<boolean> {
    if (this.owner !== lease.owner || this.token !== lease.token) return Promise.resolve(false);
    this.expiresAt = Date.now() + ttlMs;
    return Promise.resolve(true);
  }

  isCurrent(lease: Lease): Promise<boolean> {
    return Promise.resolve(this.owner === lease.owner && this.token === lease.token);
  }

  release(lease: Lease): Promise<void> {
    if (this.owner === lease.owner && this.token === lease.token) this.expiresAt = 0;
    return Promise.resolve();
  }

  /** Another relay takes the lease over. */
  steal(): void {
    this.owner = 'someone-else';
    this.token++;
    this.expiresAt = Date.now() + 60_000;
  }
}

export class MemoryCheckpoints implements CheckpointStore {
  readonly values = new Map<string, unknown>();
  get(key: string): Promise<unknown> {
    return Promise.resolve(this.values.get(key));
  }
  set(key: string, value: unknown): Promise<void> {
    this.values.set(key, structuredClone(value));
    return Promise.resolve();
  }
  delete(key: string): Promise<void> {
    this.values.delete(key);
    return Promise.resolve();
  }
}
