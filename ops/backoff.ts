/** Exponential backoff with full jitter (AWS architecture blog), capped. */
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
}

/** The backoff of a process's `retry*` settings (the relay's and the sink's configs name them alike). */
export function retryBackoff(config: {
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly retryFactor: number;
}): BackoffOptions {
  return { initialMs: config.retryInitialMs, maxMs: config.retryMaxMs, factor: config.retryFactor };
}

export function backoffDelay(attempt: number, o: BackoffOptions, random = Math.random): number {
  const ceiling = Math.min(o.maxMs, o.initialMs * o.factor ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Sleeps, waking early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
