/** In-memory adapters of the relay's ports, for unit tests of the relay's logic (no I/O). */
import type { OutboxEntry, OutboxFailure } from '../schemas/outbox-entry.js';
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
  EntryRef,
  ScanKey,
  ScanPage,
  ScannedEntry,
  VersionStatus,
} from './ports.js';

type Doc = Record<string, unknown>;

/**
 * The outbox in memory, as one flat list of entries (a test reads `docs` and sees `relayed` ones
 * too); grouped by aggregate it behaves as the aggregate documents do: a scan reads an aggregate's
 * entries together, a mark is fenced per aggregate.
 */
export class MemoryOutbox implements OutboxSource {
  readonly docs: Doc[] = [];
  /** Highest version relayed and gone per aggregate (`Type/id`), as `relayedVersion` says. */
  readonly relayedUpTo = new Map<string, number>();
  private readonly fences = new Map<string, number>();
  token: unknown;
  handlers: ChangeFeedHandlers | undefined;
  /** Makes the next `watch` with a token fail as history lost. */
  historyLost = false;
  failScans = 0;

  insert(...docs: Record<string, unknown>[]): void {
    for (const d of docs) this.docs.push({ status: 'pending', ...d });
    this.handlers?.onActivity();
    this.handlers?.onChange();
  }

  ensureIndexes(): Promise<void> {
    return Promise.resolve();
  }

  scanPending(after: ScanKey | undefined, limit: number): Promise<ScanPage> {
    if (this.failScans > 0) {
      this.failScans--;
      return Promise.reject(new Error('scan failed'));
    }
    const groups = new Map<string, Doc[]>();
    for (const d of this.docs) {
      const k = keyOf(d);
      groups.set(k, [...(groups.get(k) ?? []), d]);
    }
    const keys = [...groups.keys()]
      .filter((k) => (groups.get(k) ?? []).some((d) => d.status === 'pending'))
      .filter((k) => !after || k > `${after.aggregateType}/${after.aggregateId}`)
      .sort();
    const entries: ScannedEntry[] = [];
    let last: string | undefined;
    for (const k of keys) {
      if (entries.length >= limit) break;
      entries.push(...this.scanned(k, groups.get(k) ?? []));
      last = k;
    }
    const more = last !== undefined && last !== keys[keys.length - 1];
    const [aggregateType, ...id] = (last ?? '').split('/');
    return Promise.resolve({
      entries,
      next: more ? { aggregateType: aggregateType ?? '', aggregateId: id.join('/') } : undefined,
    });
  }

  private scanned(k: string, group: readonly Doc[]): ScannedEntry[] {
    const [aggregateType = '', ...rest] = k.split('/');
    const aggregateId = rest.join('/');
    const relayed = this.relayedUpTo.get(k) ?? 0;
    const statusOf = (v: number): VersionStatus => {
      if (v <= relayed) return 'relayed';
      const d = group.find((x) => x.version === v);
      return d ? (d.status as VersionStatus) : 'absent';
    };
    const held = group.some((d) => d.status === 'failed');
    const skipped = group
      .filter((d) => d.status === 'skipped')
      .map((d) => ({ eventId: String(d.eventId), version: Number(d.version) }));
    return group
      .filter((d) => d.status === 'pending')
      .sort((a, b) => Number(a.version) - Number(b.version))
      .map((d) => ({
        raw: { ...d },
        ref: {
          aggregateType,
          aggregateId,
          eventId: typeof d.eventId === 'string' ? d.eventId : undefined,
          version: typeof d.version === 'number' ? d.version : 0,
          index: this.docs.indexOf(d),
          fence: this.fences.get(k) ?? 0,
          skipped,
        },
        previous: statusOf((typeof d.version === 'number' ? d.version : 0) - 1),
        held,
      }));
  }

  heldAggregates(): Promise<string[]> {
    return Promise.resolve([
      ...new Set(this.docs.filter((d) => d.status === 'failed').map((d) => keyOf(d))),
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

  markRelayed(refs: readonly EntryRef[], fence: number): Promise<number> {
    let n = 0;
    for (const ref of refs) {
      const k = `${ref.aggregateType}/${ref.aggregateId}`;
      if ((this.fences.get(k) ?? 0) > fence) continue;
      const d = this.docs[ref.index];
      if (d?.status !== 'pending' || d.eventId !== ref.eventId) continue;
      d.status = 'relayed';
      this.fences.set(k, fence);
      n++;
    }
    return Promise.resolve(n);
  }

  markFailed(ref: EntryRef, failure: OutboxFailure, fence: number): Promise<void> {
    const k = `${ref.aggregateType}/${ref.aggregateId}`;
    if ((this.fences.get(k) ?? 0) > fence) return Promise.resolve();
    const d = this.docs[ref.index];
    if (d?.status === 'pending') Object.assign(d, { status: 'failed', failure });
    this.fences.set(k, fence);
    return Promise.resolve();
  }

  release(aggregateId: string, mode: 'retry' | 'skip', aggregateType?: string): Promise<number> {
    let n = 0;
    for (const d of this.docs) {
      if (aggregateType !== undefined && d.aggregateType !== aggregateType) continue;
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

  /** Feeds opened so far (the relay closes its feed while it drains a backlog). */
  watchesOpened = 0;

  watch(resumeToken: unknown, handlers: ChangeFeedHandlers): Promise<ChangeFeed> {
    if (resumeToken && this.historyLost) {
      this.historyLost = false;
      return Promise.reject(Object.assign(new Error('history lost'), { code: 286 }));
    }
    this.handlers = handlers;
    this.watchesOpened++;
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

function keyOf(d: Doc): string {
  return `${String(d.aggregateType)}/${String(d.aggregateId)}`;
}

/** An entry as the relay's scan hands it to `checkEntry`: the first of its aggregate's outbox. */
export function scannedEntry(entry: OutboxEntry): ScannedEntry {
  return {
    raw: { ...entry },
    ref: {
      aggregateType: entry.aggregateType,
      aggregateId: entry.aggregateId,
      eventId: entry.eventId,
      version: entry.version,
      index: 0,
      fence: 0,
      skipped: [],
    },
    previous: 'relayed',
    held: false,
  };
}
