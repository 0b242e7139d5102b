import { describe, expect, it } from '@jest/globals';
import type { EntryRef, VersionStatus } from './ports.js';
import {
  PublishedVersions,
  planPage,
  predecessorVerdict,
  type PlanEntry,
  type PublishPlanInput,
} from './publish-plan.js';

const ref = (id: string, version: number): EntryRef => ({
  aggregateType: 'Account',
  aggregateId: id,
  eventId: `${id}-${version}`,
  version,
  index: version - 1,
  fence: 0,
  skipped: [],
});

function ready(
  id: string,
  version: number,
  previous: VersionStatus = 'relayed',
  o: { released?: boolean; documentHeld?: boolean } = {},
): PlanEntry {
  return {
    documentHeld: o.documentHeld ?? false,
    checked: {
      ok: true,
      entry: {
        ref: ref(id, version),
        eventId: `${id}-${version}`,
        aggregateType: 'Account',
        aggregateId: id,
        version,
        occurredAt: new Date(0),
        released: o.released ?? false,
        previous,
        record: { topic: 'accounts', key: id, value: Buffer.alloc(0), headers: {} },
      },
    },
  };
}

const bad = (id: string, version: number): PlanEntry => ({
  documentHeld: false,
  checked: {
    ok: false,
    bad: { ref: ref(id, version), code: 'envelope_invalid', reason: 'malformed' },
  },
});

function plan(entries: PlanEntry[], o: Partial<Omit<PublishPlanInput, 'entries'>> = {}) {
  const p = planPage({
    entries,
    lastPublished: o.lastPublished ?? new Map(),
    held: o.held ?? new Set(),
  });
  return {
    ...p,
    published: p.publish.map((e) => e.eventId),
    failed: p.fail.map((b) => `${b.ref.eventId ?? ''}:${b.code}`),
    remarked: p.remark.map((r) => r.eventId),
  };
}

describe('publish plan', () => {
  it('publishes an aggregate’s pending versions in order within a page and remembers the newest', () => {
    // v2 and v3 read with v1 pending in the same document: contiguous with what this page publishes.
    const p = plan([
      ready('a', 1),
      ready('a', 2, 'pending'),
      ready('a', 3, 'pending'),
      ready('b', 1),
    ]);
    expect(p.published).toEqual(['a-1', 'a-2', 'a-3', 'b-1']);
    expect([...p.versions]).toEqual([
      ['Account/a', 3],
      ['Account/b', 1],
    ]);
    expect(p.failed).toEqual([]);
    expect(p.waiting).toBe(false);
  });

  it('marks again, without publishing, an entry at or below the version it last published', () => {
    const p = plan([ready('a', 4, 'pending'), ready('a', 5, 'pending'), ready('a', 6, 'pending')], {
      lastPublished: new Map([['Account/a', 5]]),
    });
    expect(p.remarked).toEqual(['a-4', 'a-5']);
    expect(p.published).toEqual(['a-6']);
  });

  it('decides a version whose predecessor it did not publish by that predecessor’s fate', () => {
    expect(predecessorVerdict({ previous: 'relayed', released: false })).toBe('ok');
    expect(predecessorVerdict({ previous: 'skipped', released: false })).toBe('ok');
    expect(predecessorVerdict({ previous: 'failed', released: false })).toBe('held');
    expect(predecessorVerdict({ previous: 'pending', released: false })).toBe('wait');
    expect(predecessorVerdict({ previous: 'absent', released: false })).toBe('gap');
    expect(predecessorVerdict({ previous: 'absent', released: true })).toBe('ok');

    const p = plan([
      ready('relayed', 3, 'relayed'),
      ready('skipped', 3, 'skipped'),
      ready('failed', 3, 'failed'),
      ready('failed', 4, 'pending'),
      ready('released', 3, 'absent', { released: true }),
    ]);
    expect(p.published).toEqual(['relayed-3', 'skipped-3', 'released-3']);
    expect([...p.held]).toEqual(['Account/failed']);
    expect(p.failed).toEqual([]);
  });

  it('waits, with the aggregate’s later entries, while a predecessor is pending, and says to look again soon', () => {
    const p = plan([ready('a', 3, 'pending'), ready('a', 4, 'pending'), ready('b', 1)]);
    expect(p.published).toEqual(['b-1']);
    expect(p.waiting).toBe(true);
    expect(p.held.size).toBe(0);
  });

  it('fails a version gap, naming what is missing, and holds the aggregate', () => {
    const p = plan([ready('a', 7, 'absent'), ready('a', 8, 'pending'), ready('b', 1)], {
      lastPublished: new Map([['Account/a', 5]]),
    });
    expect(p.failed).toEqual(['a-7:version_gap']);
    expect(p.fail[0]?.reason).toBe(
      'version 6 of Account a is missing (relayed up to 5); release to publish anyway',
    );
    expect(p.published).toEqual(['b-1']);
    expect([...p.held]).toEqual(['Account/a']);
    expect(plan([ready('c', 2, 'absent')]).fail[0]?.reason).toContain(
      '(relayed up to an earlier version)',
    );
  });

  it('fails a bad entry and holds its aggregate’s later entries; other aggregates flow', () => {
    const p = plan([ready('a', 1), bad('a', 2), ready('a', 3, 'failed'), ready('b', 1)]);
    expect(p.failed).toEqual(['a-2:envelope_invalid']);
    expect(p.published).toEqual(['a-1', 'b-1']);
    expect([...p.held]).toEqual(['Account/a']);
  });

  it('publishes nothing of an aggregate held already or whose document has a failed entry', () => {
    const p = plan([ready('a', 1), ready('b', 1, 'relayed', { documentHeld: true }), bad('a', 2)], {
      held: new Set(['Account/a']),
    });
    expect(p.published).toEqual([]);
    expect(p.failed).toEqual([]);
    expect([...p.held]).toEqual(['Account/b']);
  });
});

describe('published versions', () => {
  it('keeps the newest version per aggregate and forgets the least recently published beyond its limit', () => {
    const v = new PublishedVersions(2);
    v.remember(
      new Map([
        ['a', 1],
        ['b', 1],
      ]),
    );
    v.remember(new Map([['a', 2]]));
    v.remember(new Map([['c', 1]]));
    expect([v.get('a'), v.get('b'), v.get('c'), v.size]).toEqual([2, undefined, 1, 2]);
    v.clear();
    expect(v.size).toBe(0);
  });
});
