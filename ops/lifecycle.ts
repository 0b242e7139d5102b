/**
 * The lifecycle both long-running processes (relay, sink) share, after Temporal's worker: one state
 * union, one log line per transition (the same message and fields for every process; the logger's
 * `component` says whose), an idempotent `stop()` that drains for a grace period and then closes
 * anyway, a hard limit on the closing, and a `done` promise that resolves on a stop and rejects on
 * a failure. What draining and closing mean is the process's own business (its hooks).
 */
import type { Logger } from 'pino';

export type ProcessState = 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

/** How long closing may take once draining ended (or was cut short) before `stop()` resolves. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

export interface LifecycleOptions {
  /** The component's child logger. */
  readonly log: Logger;
  /** How long `stop()` waits for the work in flight before it closes the clients anyway. */
  readonly graceMs: number;
  /** Closing that takes longer than this is left behind: `stop()` resolves regardless. */
  readonly closeTimeoutMs?: number;
  /** Finishes the work in flight (a batch, a publish); bounded by `graceMs`. */
  readonly drain: () => Promise<void>;
  /** Releases and closes what the process created. Runs once, on a stop or a failure, even when the
   * drain was cut short. */
  readonly close: () => Promise<void>;
  /** Fields of the first line (`to: 'starting'`). */
  readonly fields?: Readonly<Record<string, unknown>>;
}

const MESSAGE = 'state changed';

export class Lifecycle {
  readonly done: Promise<void>;
  private current: ProcessState = 'starting';
  private stopping: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private failing: Promise<void> | undefined;
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;

  constructor(private readonly o: LifecycleOptions) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A failure is reported through `done` to whoever awaits it, never as an unhandled rejection.
    this.done.catch(() => undefined);
    o.log.info({ to: 'starting', ...o.fields }, MESSAGE);
  }

  get state(): ProcessState {
    return this.current;
  }

  /** Stopped or failed: nothing runs any more. */
  get ended(): boolean {
    return this.current === 'stopped' || this.current === 'failed';
  }

  /** Start-up is over: the process works. */
  running(fields: Readonly<Record<string, unknown>> = {}): void {
    if (this.current === 'starting') this.transition('running', fields);
  }

  /**
   * Idempotent. From `running`: `draining`, the drain (up to the grace period), the close (up to its
   * limit), `stopped`, `done` resolves. From `starting` (a start-up cut short) there is nothing to
   * drain. Once failed, it waits for the failure's close and resolves.
   */
  stop(fields: () => Readonly<Record<string, unknown>> = () => ({})): Promise<void> {
    this.stopping ??= this.runStop(fields);
    return this.stopping;
  }

  /**
   * The process cannot go on: `failed` (logged as an error with `err`), the close, `done` rejects with
   * `error`. `halt` (bounded by the grace period) stops the work first. Idempotent; ignored once the
   * process stopped or failed.
   */
  fail(error: unknown, halt?: () => Promise<void>): Promise<void> {
    if (this.ended) return this.failing ?? Promise.resolve();
    this.transition('failed', { err: error });
    this.failing = (async () => {
      if (halt) await this.within(halt(), this.o.graceMs, 'halt');
      await this.closeOnce();
      this.rejectDone(error);
    })();
    return this.failing;
  }

  private async runStop(fields: () => Readonly<Record<string, unknown>>): Promise<void> {
    if (this.ended) {
      await this.failing;
      return;
    }
    if (this.current === 'running') {
      this.transition('draining');
      const drained = await this.within(this.o.drain(), this.o.graceMs, 'drain');
      if (drained === 'timeout') {
        this.o.log.warn(
          { graceMs: this.o.graceMs },
          'stop forced: the work in flight did not finish within the grace period; closing anyway',
        );
      }
    }
    await this.closeOnce();
    // A failure while draining wins: `done` has rejected.
    if (this.current === 'failed') return;
    this.transition('stopped', fields());
    this.resolveDone();
  }

  private async closeOnce(): Promise<void> {
    this.closing ??= (async () => {
      const limit = this.o.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
      if ((await this.within(this.o.close(), limit, 'close')) === 'timeout') {
        this.o.log.warn(
          { closeTimeoutMs: limit },
          'stop forced: clients did not close in time; leaving them behind',
        );
      }
    })();
    return this.closing;
  }

  /** `p` raced against `ms`; its failure is logged, not thrown (stopping goes on regardless). */
  private async within(p: Promise<void>, ms: number, step: string): Promise<'ok' | 'timeout'> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        resolve('timeout');
      }, ms);
    });
    try {
      return await Promise.race([
        p.then(
          () => 'ok' as const,
          (e: unknown) => {
            this.o.log.warn({ err: e, step }, `${step} failed while stopping`);
            return 'ok' as const;
          },
        ),
        late,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private transition(to: ProcessState, fields: Readonly<Record<string, unknown>> = {}): void {
    const from = this.current;
    this.current = to;
    if (to === 'failed') this.o.log.error({ from, to, ...fields }, MESSAGE);
    else this.o.log.info({ from, to, ...fields }, MESSAGE);
  }
}
