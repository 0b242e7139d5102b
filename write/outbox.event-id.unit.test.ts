import { describe, expect, it } from '@jest/globals';
import { nextEventId } from './outbox.js';

describe('nextEventId', () => {
  it('gives UUID v7s that sort in the order they were made, none twice, across pool refills', () => {
    // 10,000 ids draw 160 KB of random bytes: the 4 KiB pool refills about 40 times.
    const ids = Array.from({ length: 10_000 }, () => nextEventId());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids.slice(0, 50)) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
  });

  it('carries the current time in its first 48 bits', () => {
    const before = Date.now();
    const id = nextEventId();
    const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(Date.now() + 1);
  });
});
