/**
 * Start-up waits for what a process needs instead of giving up (as Kafka Connect and Debezium do):
 * each dependency is tried in turn, with capped, jittered backoff and one log line per failed
 * attempt naming the dependency, its address (without credentials) and the error. Only an error
 * that says a retry cannot help (a non-retriable `PipelineError`: bad settings, missing tables), the
 * give-up timeout or an abort (SIGTERM, `stop`) end the wait. The relay and the sink both use it.
 */
import type { Logger } from 'pino';
import { PipelineError, isPipelineError } from '../schemas/errors.js';
import { backoffDelay, sleep } from './backoff.js';
import type { ReadinessCheck } from './http.js';
import { redactUrls } from './redact.js';

export interface Dependency {
  /** What is missing, as the log line names it: `mysql`, `kafka`, `topics`, `mongodb`. */
  readonly name: string;
  /** Where, without credentials (`addressOf` a URL). */
  readonly address: string;
  /** Resolves once the dependency is usable; rejects otherwise. A non-retriable `PipelineError`
   * ends the wait: waiting cannot fix it. */
  readonly check: () => Promise<void>;
}

export interface StartupWaitOptions {
  readonly logger: Logger;
  /** Give up after this long in all (0: wait forever). */
  readonly timeoutMs: number;
  /** The setting of `timeoutMs`, named in the give-up message. */
  readonly setting: string;
  /** Growth factor 2 unless given. */
  readonly backoff: {
    readonly initialMs: number;
    readonly maxMs: number;
    readonly factor?: number;
  };
  /** One attempt that does not settle within this long counts as failed (default 30 s). */
  readonly attemptTimeoutMs?: number;
  /** Aborting ends the wait at once with a `stopped` error. */
  readonly signal?: AbortSignal;
}

interface Waiting {
  readonly name: string;
  readonly address: string;
  readonly attempt: number;
  readonly error: string | undefined;
}

export class StartupWait {
  private waiting: Waiting | undefined;
  private finished = false;
  private readonly startedAt = Date.now();

  constructor(private readonly o: StartupWaitOptions) {}

  /** True once every dependency answered. */
  get done(): boolean {
    return this.finished;
  }

  /** What `/readyz` reports while starting: which dependency it waits for, and why. */
  readiness(): ReadinessCheck {
    if (this.finished) return { ok: true };
    const w = this.waiting;
    if (!w) return { ok: false, detail: 'starting' };
    return {
      ok: false,
      detail:
        w.error === undefined
          ? `connecting to ${w.name} at ${w.address}`
          : `waiting for ${w.name} at ${w.address} (attempt ${w.attempt}): ${w.error}`,
    };
  }

  /** Waits for each dependency in order. Rejects only with a non-retriable error. */
  async waitFor(dependencies: readonly Dependency[]): Promise<void> {
    for (const d of dependencies) await this.waitForOne(d);
    this.waiting = undefined;
    this.finished = true;
  }

  private async waitForOne(d: Dependency): Promise<void> {
    const { logger: log, timeoutMs, signal } = this.o;
    const deadline = timeoutMs > 0 ? this.startedAt + timeoutMs : Infinity;
    const where = { dependency: d.name, address: d.address };
    for (let attempt = 1; ; attempt++) {
      this.waiting = { name: d.name, address: d.address, attempt, error: this.waiting?.error };
      const outcome = await this.attempt(d, deadline);
      if (outcome === 'ok') {
        if (attempt > 1)
          log.info(
            { ...where, attempts: attempt, waitedMs: Date.now() - this.startedAt },
            `start-up: ${d.name} at ${d.address} is available`,
          );
        this.waiting = undefined;
        return;
      }
      if (outcome === 'aborted') throw this.stopped(d);
      const error = messageOf(outcome.error);
      if (isPipelineError(outcome.error) && !outcome.error.retriable) {
        log.error(
          { ...where, err: outcome.error },
          `start-up: ${d.name} at ${d.address} cannot be used, and waiting will not help: ${error}`,
        );
        throw outcome.error;
      }
      const waitedMs = Date.now() - this.startedAt;
      if (Date.now() >= deadline) {
        const message = `gave up after ${waitedMs} ms (${this.o.setting}=${timeoutMs}) waiting for ${d.name} at ${d.address}: ${error}`;
        log.error({ ...where, attempts: attempt, waitedMs }, `start-up: ${message}`);
        throw new PipelineError('startup_timeout', message, {
          retriable: false,
          cause: outcome.error,
          context: { dependency: d.name, address: d.address },
        });
      }
      const delay = Math.min(
        backoffDelay(attempt, { factor: 2, ...this.o.backoff }),
        deadline - Date.now(),
      );
      this.waiting = { name: d.name, address: d.address, attempt, error };
      log.warn(
        { ...where, attempt, retryInMs: delay, waitedMs, err: error },
        `start-up: waiting for ${d.name} at ${d.address}: ${error}`,
      );
      await sleep(delay, signal);
      if (signal?.aborted) throw this.stopped(d);
    }
  }

  /** One check, raced against the attempt timeout, the deadline and the abort signal. */
  private async attempt(
    d: Dependency,
    deadline: number,
  ): Promise<'ok' | 'aborted' | { error: unknown }> {
    const { signal } = this.o;
    if (signal?.aborted) return 'aborted';
    const limit = Math.min(this.o.attemptTimeoutMs ?? 30_000, deadline - Date.now());
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const check = d.check().then(
      () => 'ok' as const,
      (error: unknown) => ({ error }),
    );
    const late = new Promise<{ error: unknown }>((resolve) => {
      timer = setTimeout(
        () => {
          resolve({ error: new Error(`no answer within ${limit} ms`) });
        },
        Math.max(0, limit),
      );
    });
    const aborted = new Promise<'aborted'>((resolve) => {
      onAbort = () => {
        resolve('aborted');
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([check, late, aborted]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  private stopped(d: Dependency): PipelineError {
    this.o.logger.info(
      { dependency: d.name, address: d.address },
      `start-up: stopped while waiting for ${d.name}`,
    );
    return new PipelineError('stopped', `stopped while waiting for ${d.name} at ${d.address}`, {
      retriable: false,
    });
  }
}

/** `mysql://user:pw@db:3306/read?x=1` -> `db:3306/read`; also `mongodb://a:1,b:2/db`. */
export function addressOf(url: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?]*@)?([^/?#]*)(\/[^?#]*)?/i.exec(url);
  if (!m) return redactUrls(url);
  const path = m[2] && m[2] !== '/' ? m[2] : '';
  return `${m[1] ?? ''}${path}`;
}

function messageOf(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return redactUrls(text.replace(/\s+/g, ' ').trim()).slice(0, 500);
}
