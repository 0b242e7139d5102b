import { describe, expect, it } from '@jest/globals';
import { throttler, type Clock } from './throttle.js';

/** Time moves only when the code under test sleeps or a batch "works". */
function fakeClock(): Clock & { t: number; slept: number[]; work(ms: number): void } {
  const c = {
    t: 1_000_000,
    slept: [] as number[],
    now: () => c.t,
    sleep: (ms: number) => {
      c.slept.push(ms);
      c.t += ms;
      return Promise.resolve();
    },
    work: (ms: number) => {
      c.t += ms;
    },
  };
  return c;
}

describe('throttler (--max-rate)', () => {
  it('holds the rate: 10 batches of 500 at 1000/s take 5 s however fast the work is', async () => {
    const clock = fakeClock();
    const start = clock.t;
    const throttle = throttler(1000, clock);
    for (let i = 0; i < 10; i++) {
      clock.work(50);
      await throttle(500);
      // Never ahead of the rate at any point of the run.
      expect((500 * (i + 1)) / ((clock.t - start) / 1000)).toBeLessThanOrEqual(1000);
    }
    expect(clock.t - start).toBe(5000);
    expect(clock.slept).toEqual(Array.from({ length: 10 }, () => 450));
  });

  it('does not sleep while the run is behind the rate, and sleeps again once it is ahead', async () => {
    const clock = fakeClock();
    const start = clock.t;
    const throttle = throttler(1000, clock);
    clock.work(2000); // a slow first batch of 500: 1.5 s behind the rate
    await throttle(500);
    expect(clock.slept).toEqual([]);
    // The next batches run at once until the average is back at the rate, then sleep again.
    clock.work(100);
    await throttle(500); // due at 1 s, now 2.1 s
    clock.work(100);
    await throttle(1500); // due at 2.5 s, now 2.2 s
    expect(clock.slept).toEqual([300]);
    expect(clock.t - start).toBe(2500);
  });

  it('never sleeps without a limit (0)', async () => {
    const clock = fakeClock();
    const throttle = throttler(0, clock);
    for (let i = 0; i < 100; i++) await throttle(10_000);
    expect(clock.slept).toEqual([]);
  });
});
