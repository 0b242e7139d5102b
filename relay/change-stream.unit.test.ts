import { describe, expect, it } from '@jest/globals';
import { ResumePolicy } from './change-stream.js';

const policy = (tries = 3, deafMs = 1000) => new ResumePolicy({ tries, deafMs });

describe('ResumePolicy', () => {
  it('drops a stored token after `tries` failures in a row, whatever the error', () => {
    const p = policy();
    p.opening(true, 0);
    expect(p.failure(false)).toBe('retry');
    expect(p.failures).toBe(1);
    p.opening(true, 10);
    expect(p.failure(false)).toBe('retry');
    p.opening(true, 20);
    expect(p.failure(false)).toBe('drop');
    expect(p.failures).toBe(0);
  });

  it('drops at once when the server says the history is lost', () => {
    const p = policy();
    p.opening(true, 0);
    expect(p.failure(true)).toBe('drop');
    p.opening(false, 0);
    expect(p.failure(true)).toBe('drop');
  });

  it('a change delivered proves the token: the count starts again, later failures only reopen', () => {
    const p = policy();
    p.opening(true, 0);
    expect(p.failure(false)).toBe('retry');
    p.opening(true, 10);
    p.activity();
    expect(p.failures).toBe(0);
    expect(p.onTrial).toBe(false);
    expect(p.failure(false)).toBe('reopen');
    p.opening(true, 20);
    expect(p.failure(false)).toBe('retry');
    expect(p.failures).toBe(1);
  });

  it('a stream without a stored token has nothing to drop: it reopens', () => {
    const p = policy(1);
    p.opening(false, 0);
    expect(p.failure(false)).toBe('reopen');
    expect(p.failures).toBe(0);
  });

  it('tries = 1 drops at the first failure', () => {
    const p = policy(1);
    p.opening(true, 0);
    expect(p.failure(false)).toBe('drop');
  });

  it('a resumed stream is deaf `deafMs` after a mark it did not show; the mark stays unseen across retries', () => {
    const p = policy(3, 1000);
    p.opening(true, 0);
    expect(p.deafAt()).toBeUndefined(); // nothing marked: nothing to show
    p.marked(500);
    p.marked(700); // the first unseen mark counts
    expect(p.deafAt()).toBe(1500);
    expect(p.failure(false)).toBe('retry');
    p.opening(true, 2000); // the retried stream gets its own `deafMs`
    expect(p.deafAt()).toBe(3000);
    p.activity();
    expect(p.deafAt()).toBeUndefined();
  });

  it('no deafness without a stored token, or when turned off', () => {
    const fresh = policy();
    fresh.opening(false, 0);
    fresh.marked(10);
    expect(fresh.deafAt()).toBeUndefined();
    const off = policy(3, 0);
    off.opening(true, 0);
    off.marked(10);
    expect(off.deafAt()).toBeUndefined();
  });
});
