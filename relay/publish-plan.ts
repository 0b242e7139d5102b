/**
 * The publish decision, as a pure function: given one scanned page of outbox entries (checked, in
 * (type, id, version) order) and what the relay remembers (the last version it published of each
 * aggregate, the aggregates held), decide for each entry whether it is published, marked again (it
 * was published, its mark was lost), waits, is held, or fails (a bad entry, or a version gap). No
 * I/O: the relay marks the failures, publishes and marks the rest.
 *
 * Rules, per aggregate:
 * - a held aggregate (a failed entry in its document, or one failed this pass) publishes nothing;
 * - a bad entry fails and holds its aggregate;
 * - an entry at or below the version this relay last published is marked again, not published;
 * - the version after the last one published is published;
 * - otherwise its predecessor's fate, from the same document read, decides: relayed or skipped,
 *   publish; failed, held; pending, wait (the aggregate's later entries wait too, and the relay
 *   looks again soon); absent, a `version_gap` failure unless an operator released the entry.
 */
import type { BadEntry, CheckedEntry, ReadyEntry } from './entry.js';
import type { EntryRef } from './ports.js';

/** `Type/id`: how the relay names an aggregate (ids are unique per type only). */
export function aggregateKey(ref: Pick<EntryRef, 'aggregateType' | 'aggregateId'>): string {
  return `${ref.aggregateType}/${ref.aggregateId}`;
}

export interface PlanEntry {
  readonly checked: CheckedEntry;
  /** Its document has a failed entry (read with it). */
  readonly documentHeld: boolean;
}

export interface PublishPlanInput {
  readonly entries: readonly PlanEntry[];
  /** The last version this relay published, by aggregate key (forgotten at every takeover). */
  readonly lastPublished: { get(key: string): number | undefined };
  /** Aggregates held, by aggregate key. */
  readonly held: ReadonlySet<string>;
}

export interface PublishPlan {
  /** To mark failed first, in page order (each holds its aggregate). */
  readonly fail: readonly BadEntry[];
  /** To publish, in page order. */
  readonly publish: readonly ReadyEntry[];
  /** Published already (their mark was lost): to mark relayed with the published ones. */
  readonly remark: readonly EntryRef[];
  /** The newest version published per aggregate, to remember once the broker acknowledged. */
  readonly versions: ReadonlyMap<string, number>;
  /** Aggregates found held on this page (`fail`'s included). */
  readonly held: ReadonlySet<string>;
  /** An entry waits behind a pending predecessor: scan again soon. */
  readonly waiting: boolean;
}

/** What an entry whose predecessor this relay did not publish may do. */
export type PredecessorVerdict = 'ok' | 'wait' | 'held' | 'gap';

export function planPage(input: PublishPlanInput): PublishPlan {
  const fail: BadEntry[] = [];
  const publish: ReadyEntry[] = [];
  const remark: EntryRef[] = [];
  const versions = new Map<string, number>();
  const held = new Set<string>();
  const blocked = new Set<string>();
  const isHeld = (key: string): boolean => held.has(key) || input.held.has(key);

  for (const { checked, documentHeld } of input.entries) {
    const key = aggregateKey(checked.ok ? checked.entry.ref : checked.bad.ref);
    if (documentHeld) held.add(key);
    if (isHeld(key) || blocked.has(key)) continue;
    if (!checked.ok) {
      fail.push(checked.bad);
      held.add(key);
      continue;
    }
    const e = checked.entry;
    const known = versions.get(key) ?? input.lastPublished.get(key);
    if (known !== undefined && e.version <= known) {
      remark.push(e.ref);
      continue;
    }
    if (known === undefined || e.version !== known + 1) {
      const verdict = predecessorVerdict(e);
      if (verdict === 'wait') {
        blocked.add(key);
        continue;
      }
      if (verdict === 'held') {
        held.add(key);
        continue;
      }
      if (verdict === 'gap') {
        fail.push({
          ref: e.ref,
          code: 'version_gap',
          reason: `version ${e.version - 1} of ${e.aggregateType} ${e.aggregateId} is missing (relayed up to ${known ?? 'an earlier version'}); release to publish anyway`,
        });
        held.add(key);
        continue;
      }
    }
    versions.set(key, e.version);
    publish.push(e);
  }
  return { fail, publish, remark, versions, held, waiting: blocked.size > 0 };
}

/**
 * Version v of an aggregate whose v-1 this relay did not publish, decided on the same document
 * read: publish if v-1 was relayed or skipped; hold if it failed; wait while it is pending; a
 * missing v-1 is a gap (held) unless an operator released the entry.
 */
export function predecessorVerdict(
  e: Pick<ReadyEntry, 'previous' | 'released'>,
): PredecessorVerdict {
  switch (e.previous) {
    case 'relayed':
    case 'skipped':
      return 'ok';
    case 'failed':
      return 'held';
    case 'pending':
      return 'wait';
    case 'absent':
      return e.released ? 'ok' : 'gap';
  }
}

/**
 * The last version published per aggregate, bounded: beyond `limit` aggregates the least recently
 * published is forgotten (its next entry is then decided by its predecessor's fate, read with it).
 */
export class PublishedVersions {
  private readonly versions = new Map<string, number>();

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.versions.size;
  }

  get(key: string): number | undefined {
    return this.versions.get(key);
  }

  remember(published: ReadonlyMap<string, number>): void {
    for (const [key, version] of published) {
      this.versions.delete(key);
      this.versions.set(key, version);
      if (this.versions.size > this.limit) {
        const oldest = this.versions.keys().next().value;
        if (oldest !== undefined) this.versions.delete(oldest);
      }
    }
  }

  clear(): void {
    this.versions.clear();
  }
}
