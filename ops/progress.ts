/**
 * What a long operator command (`cqrs-sync replay`) shows while it runs: each phase announced when
 * it starts; while events are counted, a one-line bar redrawn in place on a terminal, or a plain
 * line every few seconds (and at the phase's end) otherwise; at the end, how long each phase took.
 *
 * Rates are honest: they count only the phase in which events are applied (events since that phase
 * started / time since it started), never the waiting and preparing before it.
 *
 * Pure: text goes out through `write`, time comes from `now`, so tests drive it with their own clock.
 */

export interface ProgressOptions {
  /** Raw text, newlines included (stderr, or a line collector). */
  readonly write: (text: string) => void;
  /** Redraw a bar in place (stderr is a terminal) instead of writing plain lines. */
  readonly tty: boolean;
  /** The terminal's width, asked at each redraw (it may be resized); default 80. */
  readonly columns?: () => number | undefined;
  readonly now?: () => number;
  /** Plain lines at most this often (default 5 s); phase changes always get one. */
  readonly everyMs?: number;
  /** Starts every line (default `replay`). */
  readonly label?: string;
  /** What is counted, plural and per second (default `events`, `ev/s`). */
  readonly unit?: { readonly many: string; readonly perSecond: string };
}

const EVENTS = { many: 'events', perSecond: 'ev/s' };

export interface ProgressSummary {
  /** Events counted (the last `applied` count). */
  readonly events: number;
  readonly totalMs: number;
  /** Each phase's duration, in the order they ran. */
  readonly phaseMs: Readonly<Record<string, number>>;
  /** The phase in which events were counted, and its rate: events / that phase's duration. */
  readonly countedPhase: string | undefined;
  readonly eventsPerSecond: number;
}

interface Counting {
  readonly phase: string;
  readonly since: number;
  done: number;
  total: number;
}

const CLEAR_LINE = '\r\x1b[K';

export class ProgressReporter {
  private readonly now: () => number;
  private readonly started: number;
  private readonly phases: { name: string; since: number; ms?: number }[] = [];
  private counting: Counting | undefined;
  private barShown = false;
  private lastLineAt: number | undefined;
  private lastLineDone: number | undefined;

  constructor(private readonly o: ProgressOptions) {
    this.now = o.now ?? Date.now;
    this.started = this.now();
  }

  /** A phase starts (the previous one ends): announced on a line of its own. */
  phase(name: string, detail: string): void {
    this.endPhase();
    this.phases.push({ name, since: this.now() });
    this.line(`${name}: ${detail}`);
  }

  /** `done` of `total` events applied in the current phase. */
  applied(done: number, total: number): void {
    const current = this.phases.at(-1) ?? { name: '', since: this.started };
    if (this.counting?.phase !== current.name)
      this.counting = { phase: current.name, since: current.since, done, total };
    this.counting.done = done;
    this.counting.total = total;
    if (this.o.tty) {
      this.o.write(`${CLEAR_LINE}${this.bar()}`);
      this.barShown = true;
    } else {
      const due =
        this.lastLineAt === undefined || this.now() - this.lastLineAt >= (this.o.everyMs ?? 5000);
      if (due || (done >= total && this.lastLineDone !== done)) this.plain();
    }
  }

  /** Ends the last phase and says so; the durations and the counted phase's rate. */
  finish(): ProgressSummary {
    this.endPhase();
    const summary = this.summary();
    this.line(`done in ${seconds(summary.totalMs)}`);
    return summary;
  }

  /** Ends the bar's line (after a failure), so what is written next starts on a line of its own. */
  close(): void {
    this.endBar();
  }

  /** The live rate: events counted in the phase / time since the phase started. */
  rate(): number {
    const c = this.counting;
    return c ? perSecond(c.done, this.now() - c.since) : 0;
  }

  summary(): ProgressSummary {
    const phaseMs: Record<string, number> = {};
    for (const p of this.phases) phaseMs[p.name] = p.ms ?? this.now() - p.since;
    const c = this.counting;
    const countedMs = c ? (phaseMs[c.phase] ?? 0) : 0;
    return {
      events: c?.done ?? 0,
      totalMs: this.now() - this.started,
      phaseMs,
      countedPhase: c?.phase,
      eventsPerSecond: c ? perSecond(c.done, countedMs) : 0,
    };
  }

  private endPhase(): void {
    const current = this.phases.at(-1);
    if (!current || current.ms !== undefined) return;
    // The counted phase ends with a line of where it got to (unless that line is already out).
    if (this.counting?.phase === current.name && !this.o.tty) {
      if (this.counting.done !== this.lastLineDone) this.plain();
    }
    this.endBar();
    current.ms = this.now() - current.since;
  }

  private endBar(): void {
    if (!this.barShown) return;
    this.o.write('\n');
    this.barShown = false;
  }

  private line(text: string): void {
    this.endBar();
    this.o.write(`${this.o.label ?? 'replay'}: ${text}\n`);
  }

  private plain(): void {
    this.lastLineAt = this.now();
    this.lastLineDone = this.counting?.done;
    this.line(this.progressText());
  }

  private progressText(): string {
    const c = this.counting;
    if (!c) return '';
    const rate = this.rate();
    const unit = this.o.unit ?? EVENTS;
    return `${c.phase} ${count(c.done)}/${count(c.total)} ${unit.many} (${percent(c.done, c.total)}%), ${count(Math.round(rate))} ${unit.perSecond}, ETA ${clock(eta(c.total - c.done, rate))}`;
  }

  private bar(): string {
    const c = this.counting;
    if (!c) return '';
    const rate = this.rate();
    return renderBar({
      label: c.phase,
      done: c.done,
      total: c.total,
      rate,
      etaMs: eta(c.total - c.done, rate),
      columns: this.o.columns?.() ?? 80,
      perSecond: (this.o.unit ?? EVENTS).perSecond,
    });
  }
}

export interface BarState {
  readonly label: string;
  readonly done: number;
  readonly total: number;
  readonly rate: number;
  readonly etaMs: number | undefined;
  readonly columns: number;
  /** The rate's unit (default `ev/s`). */
  readonly perSecond?: string;
}

/** One line that fits `columns - 1` (a full-width line would wrap on some terminals): the bar
 * takes the room the numbers leave, up to 30, and is dropped below 10 characters. */
export function renderBar(s: BarState): string {
  const total = count(s.total);
  const numbers = `${count(s.done).padStart(total.length)}/${total} ${String(percent(s.done, s.total)).padStart(3)}% ${count(Math.round(s.rate))} ${s.perSecond ?? 'ev/s'} ETA ${clock(s.etaMs)}`;
  const room = s.columns - 1;
  // 30 wide when there is room (it keeps its length as the numbers change), less when there is not.
  const barWidth = Math.min(30, room - s.label.length - numbers.length - 4); // 2 spaces, brackets
  if (barWidth < 10) return `${s.label} ${numbers}`.slice(0, Math.max(0, room)).trimEnd();
  const f = s.total === 0 ? 1 : Math.min(1, s.done / s.total);
  const full = Math.round(f * barWidth);
  return `${s.label} [${'#'.repeat(full)}${'.'.repeat(barWidth - full)}] ${numbers}`;
}

/** Time left at `rate` events a second; unknown while nothing was applied yet. */
export function eta(remaining: number, rate: number): number | undefined {
  if (remaining <= 0) return 0;
  return rate > 0 ? (remaining / rate) * 1000 : undefined;
}

export function perSecond(events: number, ms: number): number {
  return ms > 0 ? (events * 1000) / ms : 0;
}

function percent(done: number, total: number): number {
  return total === 0 ? 100 : Math.floor((Math.min(done, total) / total) * 100);
}

const count = (n: number): string => n.toLocaleString('en');

/** `m:ss` or `h:mm:ss`; `?` when unknown. */
export function clock(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '?';
  const s = Math.ceil(ms / 1000);
  const two = (n: number): string => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}

/** Seconds with one decimal: `12.3 s`. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
