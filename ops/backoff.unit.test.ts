import { describe, expect, it } from '@jest/globals';
import { backoffDelay, sleep } from './backoff.js';

describe('backoff', () => {
  it('backs off exponentially with jitter, capped', async () => {
    const o = { initialMs: 100, maxMs: 1000, factor: 2 };
    expect(backoffDelay(1, o, () => 0)).toBe(50);
    expect(backoffDelay(3, o, () => 1)).toBe(400);
    expect(backoffDelay(30, o, () => 1)).toBe(1000);
    const ac = new AbortController();
    ac.abort();
    await sleep(10_000, ac.signal);
  });
});
