/**
 * The relay's change feed and its resume token: opens the feed when due, saves the token it gives,
 * and on failure retries or drops the stored token as `ResumePolicy` says. The feed only wakes the
 * scan up (every failure asks for a scan too), so nothing here can lose an event.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { backoffDelay, retryBackoff } from '../ops/backoff.js';
import type { ReadinessCheck } from '../ops/http.js';
import { ResumePolicy } from './change-stream.js';
import type { RelayConfig } from './config.js';
import type { ChangeFeed, ChangeFeedHandlers, OutboxSource } from './ports.js';

export interface RelayFeedParts {
  readonly source: OutboxSource;
  readonly config: Pick<
    RelayConfig,
    | 'retryInitialMs'
    | 'retryMaxMs'
    | 'retryFactor'
    | 'scanIntervalMs'
    | 'tokenSaveIntervalMs'
    | 'changeStreamTries'
    | 'changeStreamDeafMs'
    | 'name'
  >;
  readonly log: Logger;
  readonly registers: Registry[];
  /** A change came or the feed failed: the relay should scan now. */
  readonly requestScan: () => void;
}

/** The error a deaf stream fails with (for the log and the readiness check). */
class DeafStreamError extends Error {
  override readonly name = 'DeafStreamError';
}

export class RelayFeed {
  private feed: ChangeFeed | undefined;
  /** Callbacks of an earlier feed (closing, or closed) are ignored. */
  private generation = 0;
  private retryAt = 0;
  private pendingToken: unknown;
  private tokenSavedAt = 0;
  private tokenAt: number | undefined;
  private lastError: string | undefined;
  /** The stored token the current feed resumed from (JSON), to tell an echo from a new token. */
  private resumedFrom: string | undefined;
  /** Closed while the relay drains a backlog; reopened from "now" (no token) once it is drained. */
  private draining = false;
  private readonly policy: ResumePolicy;
  private readonly failures: Counter;

  constructor(private readonly parts: RelayFeedParts) {
    const { config, registers } = parts;
    this.policy = new ResumePolicy({
      tries: config.changeStreamTries,
      deafMs: config.changeStreamDeafMs,
    });
    this.failures = new Counter({
      name: 'cqrs_sync_relay_change_stream_failures_total',
      help: 'Change stream failures: failed to open, failed, or deaf while resumed from a token',
      registers,
    });
    const feed = () => this.feed;
    const tokenAt = () => this.tokenAt;
    // Labelled by the relay's name so that "no token" can be no sample at all: prom-client shows
    // an unlabelled gauge as 0 even after reset(), and 0 would read as "a token just now".
    const relay = config.name;
    new Gauge({
      name: 'cqrs_sync_relay_resume_token_age_seconds',
      help: 'Time since the change stream last gave a resume token (no sample while there is none)',
      labelNames: ['relay'],
      registers,
      collect() {
        const at = tokenAt();
        this.reset();
        if (at !== undefined) this.set({ relay }, (Date.now() - at) / 1000);
      },
    });
    new Gauge({
      name: 'cqrs_sync_relay_change_stream_open',
      help: '1 while the change stream (the fast path) is open; scans go on without it',
      registers,
      collect() {
        this.set(feed() ? 1 : 0);
      },
    });
  }

  get open(): boolean {
    return this.feed !== undefined;
  }

  /** When the feed next needs a turn (to open, or to be found deaf). */
  dueAt(): number {
    if (this.draining) return Infinity;
    return this.feed ? (this.policy.deafAt() ?? Infinity) : this.retryAt;
  }

  /**
   * A scan pass found more than a page of work: the scan drains it on its own, and the feed, which
   * only wakes the scan, would read back every one of the relay's own marks meanwhile (a stand-in
   * streams its whole oplog for each read). So the feed closes and its token is dropped; `drained()`
   * reopens it from "now" and asks for one more scan, which finds whatever was written between the
   * two. Nothing is lost: the scan is the source of truth, and a token is only a shortcut.
   */
  async drainStarted(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.pendingToken = undefined;
    this.tokenAt = undefined;
    await this.close();
    await this.parts.source.saveResumeToken(null).catch((e: unknown) => {
      // A stale token left behind costs a resumed stream's trial later, never an event.
      this.parts.log.warn({ err: e }, 'resume token not dropped before draining');
    });
  }

  /** A scan pass found no more than a page: reopen the feed (from now), then scan once more. */
  drained(): void {
    if (!this.draining) return;
    this.draining = false;
    this.retryAt = 0;
  }

  /** One turn of the relay's loop while active: opens the feed when due, fails a deaf one. */
  async turn(): Promise<void> {
    const now = Date.now();
    if (this.feed) {
      const deafAt = this.policy.deafAt();
      if (deafAt !== undefined && now >= deafAt) {
        await this.close();
        await this.failed(
          new DeafStreamError(
            `the stream resumed from the stored token showed none of the relay's marks in ${this.parts.config.changeStreamDeafMs} ms`,
          ),
          false,
          'failed',
        );
      }
      return;
    }
    if (!this.draining && now >= this.retryAt) await this.openNow();
  }

  /** The relay marked entries relayed (writes to the watched documents). */
  marked(): void {
    this.policy.marked(Date.now());
  }

  async close(): Promise<void> {
    const feed = this.feed;
    this.feed = undefined;
    this.generation++;
    await feed?.close().catch(() => undefined);
  }

  /** Saves the latest token, at most every `tokenSaveIntervalMs` unless forced (the caller holds the lease). */
  async saveToken(force: boolean): Promise<void> {
    if (this.pendingToken === undefined) return;
    if (!force && Date.now() - this.tokenSavedAt < this.parts.config.tokenSaveIntervalMs) return;
    const token = this.pendingToken;
    this.pendingToken = undefined;
    this.tokenSavedAt = Date.now();
    await this.parts.source.saveResumeToken(token).catch((e: unknown) => {
      this.parts.log.warn({ err: e }, 'resume token not saved');
    });
  }

  /** `/readyz`: not ok while the stored token is failing (at most `changeStreamTries` tries); ok but
   * degraded while scans alone carry the relay (a server without change streams is one). */
  check(active: boolean): ReadinessCheck {
    const { changeStreamTries, scanIntervalMs } = this.parts.config;
    const failures = this.policy.failures;
    if (failures > 0) {
      return {
        ok: false,
        detail: `resume token failed ${failures} of ${changeStreamTries} tries (${this.lastError ?? 'unknown error'}); scans carry the relay meanwhile`,
      };
    }
    if (this.feed) return { ok: true, detail: this.policy.onTrial ? 'open (resumed)' : 'open' };
    if (!active) return { ok: true, detail: 'closed (standby)' };
    if (this.draining) return { ok: true, detail: 'closed while the scan drains a backlog' };
    return {
      ok: true,
      detail: `degraded: polling every ${scanIntervalMs} ms (${this.lastError ?? 'change stream not open'})`,
    };
  }

  private async openNow(): Promise<void> {
    const { source, log } = this.parts;
    let token: unknown;
    try {
      token = await source.loadResumeToken();
    } catch (e) {
      log.warn({ err: e }, 'resume token not loaded: scanning');
      this.retryAt = Date.now() + this.parts.config.retryMaxMs;
      this.parts.requestScan();
      return;
    }
    const resumed = token !== undefined && token !== null;
    this.resumedFrom = resumed ? JSON.stringify(token) : undefined;
    this.policy.opening(resumed, Date.now());
    const generation = ++this.generation;
    try {
      this.feed = await source.watch(token, this.handlers(generation));
      log.info({ resumed }, 'change stream open');
      // Opened from "now" (no token): what was written before it opened is the scan's to find.
      if (!resumed) this.parts.requestScan();
    } catch (e) {
      await this.failed(e, source.isHistoryLost(e), 'open');
    }
  }

  private handlers(generation: number): ChangeFeedHandlers {
    const current = () => generation === this.generation;
    return {
      onActivity: () => {
        if (current()) this.policy.activity();
      },
      onChange: () => {
        if (current()) this.parts.requestScan();
      },
      onToken: (token) => {
        if (!current()) return;
        // A stream on trial echoes the token it was given (a deaf one does nothing else): that is
        // no new token, and saving it would make the stored one look fresh.
        if (this.policy.onTrial && JSON.stringify(token) === this.resumedFrom) return;
        this.pendingToken = token;
        this.tokenAt = Date.now();
      },
      onError: (error, historyLost) => {
        if (!current()) return;
        this.feed = undefined;
        this.generation++;
        void this.failed(error, historyLost, 'failed');
      },
    };
  }

  private async failed(
    error: unknown,
    historyLost: boolean,
    how: 'open' | 'failed',
  ): Promise<void> {
    const { config, log, source } = this.parts;
    this.failures.inc();
    this.lastError = (error instanceof Error ? error.message : String(error)).slice(0, 200);
    const verdict = this.policy.failure(historyLost);
    const now = Date.now();
    if (verdict === 'drop') {
      log.warn(
        { err: error, historyLost, tries: config.changeStreamTries },
        'change stream cannot use its resume token: dropping it and scanning the outbox',
      );
      this.pendingToken = undefined;
      this.tokenAt = undefined;
      await source.saveResumeToken(null).catch((e: unknown) => {
        log.warn({ err: e }, 'resume token not dropped: it will be tried again');
      });
      this.retryAt = now;
    } else if (verdict === 'retry') {
      const failures = this.policy.failures;
      log.warn(
        { err: error, failures, tries: config.changeStreamTries },
        'change stream failed with its resume token: scanning, then trying the token again',
      );
      // The relay's one backoff (ops/backoff.ts): `RELAY_RETRY_*`, with jitter.
      this.retryAt = now + backoffDelay(failures, retryBackoff(config));
    } else if (how === 'open') {
      log.warn({ err: error }, 'change stream failed to open; scans keep the relay going');
      this.retryAt = now + config.retryMaxMs;
    } else {
      log.warn({ err: error }, 'change stream failed: scanning');
      this.retryAt = now + config.retryInitialMs;
    }
    this.parts.requestScan();
  }
}
