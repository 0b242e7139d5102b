/** `--max-rate`: holds a run to at most `maxRate` aggregates a second, averaged from its start. */

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** Call with each batch's size once it is done; it sleeps until the batch is due (0: no limit). */
export function throttler(maxRate: number, clock: Clock = realClock): (n: number) => Promise<void> {
  const started = clock.now();
  let done = 0;
  return async (n) => {
    done += n;
    if (maxRate <= 0) return;
    const wait = started + (done / maxRate) * 1000 - clock.now();
    if (wait > 0) await clock.sleep(wait);
  };
}
