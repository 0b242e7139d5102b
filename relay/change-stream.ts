/**
 * What the relay does with a stored resume token whose change stream keeps failing: a pure policy
 * (no I/O, times passed in), so the counting is tested on its own. The stream is only the fast path
 * (scans publish), so dropping a token never loses an event; keeping an unusable one forever costs
 * every event a scan interval of latency.
 */

/** A failure's consequence: `drop` the stored token (and open a fresh stream), `retry` the stored
 * token after a backoff, or `reopen` (the stream had no token on trial: nothing to drop). */
export type FailureVerdict = 'drop' | 'retry' | 'reopen';

export interface ResumePolicyOptions {
  /** Consecutive failures of a stream opened from the stored token before the token is dropped. */
  readonly tries: number;
  /** A stream from a stored token that delivers none of the relay's own marks this long after one
   * was written is deaf (counts as a failed try); 0: never. */
  readonly deafMs: number;
}

export class ResumePolicy {
  /** Consecutive failed tries of the stored token (0 once it worked, or was dropped). */
  private failed = 0;
  /** The current stream was opened from a stored token. */
  private resumed = false;
  /** The current stream delivered a change since it opened: its token works. */
  private delivered = false;
  private openedAt = 0;
  /** When the relay wrote the first mark the stream from the token has not shown (kept across
   * retries: a stream resumed from the same token must replay it). */
  private unseenMarkAt: number | undefined;

  constructor(private readonly options: ResumePolicyOptions) {}

  /** Failed tries of the stored token so far (the readiness check is not ok while above 0). */
  get failures(): number {
    return this.failed;
  }

  /** A stream from the stored token that has not shown yet that the token works. */
  get onTrial(): boolean {
    return this.resumed && !this.delivered;
  }

  /** Called before each open: `resumed` when a stored token is given to it. */
  opening(resumed: boolean, now: number): void {
    this.resumed = resumed;
    this.delivered = false;
    this.openedAt = now;
    if (!resumed) this.unseenMarkAt = undefined;
  }

  /** The stream delivered a change (a writer's or a mark): its token works. */
  activity(): void {
    this.delivered = true;
    this.failed = 0;
    this.unseenMarkAt = undefined;
  }

  /** The relay marked entries relayed: a stream on the watched collections must show it. */
  marked(now: number): void {
    if (this.onTrial && this.unseenMarkAt === undefined) this.unseenMarkAt = now;
  }

  /** When the stream on trial counts as deaf; undefined while nothing says so. */
  deafAt(): number | undefined {
    if (!this.onTrial || this.unseenMarkAt === undefined || this.options.deafMs <= 0) return;
    return Math.max(this.unseenMarkAt, this.openedAt) + this.options.deafMs;
  }

  /** The stream failed to open, failed, or is deaf. `historyLost`: the server said the token is
   * unknown or too old (dropped at once). Whatever else the error looks like (the stand-in's
   * carry no code), a token on trial is dropped after `tries` failures in a row. */
  failure(historyLost: boolean): FailureVerdict {
    const onTrial = this.onTrial;
    this.resumed = false;
    if (historyLost) return this.drop();
    if (!onTrial) return 'reopen';
    this.failed++;
    return this.failed >= this.options.tries ? this.drop() : 'retry';
  }

  private drop(): 'drop' {
    this.failed = 0;
    this.unseenMarkAt = undefined;
    return 'drop';
  }
}
