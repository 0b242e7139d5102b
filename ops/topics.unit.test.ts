import { describe, expect, it } from '@jest/globals';
import type { Admin } from 'kafkajs';
import { createTopicsAndWait } from './topics.js';

type Meta = { name: string; partitions: { leader: number }[] }[];

/** An admin whose metadata answers are scripted, one per call; the last one repeats. */
function fakeAdmin(existing: string[], answers: (Meta | Error)[]) {
  const created: string[][] = [];
  let call = 0;
  const admin = {
    listTopics: () => Promise.resolve(existing),
    createTopics: (o: { topics: { topic: string }[] }) => {
      created.push(o.topics.map((t) => t.topic));
      return Promise.resolve(true);
    },
    fetchTopicMetadata: () => {
      const a = answers[Math.min(call++, answers.length - 1)];
      return a instanceof Error ? Promise.reject(a) : Promise.resolve({ topics: a });
    },
  };
  return { admin: admin as unknown as Admin, created, calls: () => call };
}

const typed = (type: string): Error => Object.assign(new Error(type), { type });

describe('createTopicsAndWait', () => {
  it('creates only the missing topics and retries "unknown topic" until leaders exist', async () => {
    const f = fakeAdmin(
      ['a'],
      [
        typed('UNKNOWN_TOPIC_OR_PARTITION'),
        [
          { name: 'a', partitions: [{ leader: 1 }] },
          { name: 'b', partitions: [{ leader: -1 }] },
        ],
        typed('LEADER_NOT_AVAILABLE'),
        [
          { name: 'a', partitions: [{ leader: 1 }] },
          { name: 'b', partitions: [{ leader: 1 }] },
        ],
      ],
    );
    const created = await createTopicsAndWait(f.admin, [{ topic: 'a' }, { topic: 'b' }]);
    expect(created).toEqual(['b']);
    expect(f.created).toEqual([['b']]);
    expect(f.calls()).toBe(4);
  });

  it('does not create anything when all topics exist', async () => {
    const f = fakeAdmin(['a'], [[{ name: 'a', partitions: [{ leader: 0 }] }]]);
    expect(await createTopicsAndWait(f.admin, [{ topic: 'a' }])).toEqual([]);
    expect(f.created).toEqual([]);
  });

  it('passes other errors through at once', async () => {
    const f = fakeAdmin([], [typed('TOPIC_AUTHORIZATION_FAILED')]);
    await expect(createTopicsAndWait(f.admin, [{ topic: 'a' }])).rejects.toThrow(
      'TOPIC_AUTHORIZATION_FAILED',
    );
    expect(f.calls()).toBe(1);
  });

  it('gives up after the timeout and says what it was waiting for', async () => {
    const f = fakeAdmin([], [[{ name: 'a', partitions: [] }]]);
    await expect(
      createTopicsAndWait(f.admin, [{ topic: 'a' }], { timeoutMs: 250 }),
    ).rejects.toThrow(/timed out after 250 ms waiting for topic leaders \(no leader yet for a\)/);
  });
});
