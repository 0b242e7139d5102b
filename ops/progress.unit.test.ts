import { describe, expect, it } from '@jest/globals';
import { clock, eta, perSecond, ProgressReporter, renderBar, seconds } from './progress.js';

/** A reporter on a clock the test moves, writing into a string. */
function reporter(tty: boolean, columns = 60) {
  let t = 1_000_000;
  let text = '';
  const p = new ProgressReporter({
    tty,
    columns: () => columns,
    now: () => t,
    write: (s) => (text += s),
  });
  return {
    p,
    tick: (ms: number) => (t += ms),
    text: () => text,
    lines: () => text.split('\n').filter((l) => l !== ''),
  };
}

describe('renderBar', () => {
  const state = { label: 'applying', done: 250, total: 1000, rate: 50, etaMs: 15_000 };

  it('draws a 30-wide bar when there is room, a shorter one that fits a narrower terminal', () => {
    expect(renderBar({ ...state, columns: 100 })).toBe(
      'applying [########......................]   250/1,000  25% 50 ev/s ETA 0:15',
    );
    const narrow = renderBar({ ...state, columns: 60 });
    expect(narrow).toBe('applying [####..........]   250/1,000  25% 50 ev/s ETA 0:15');
    expect(narrow.length).toBe(59); // one short: a full-width line wraps on some terminals
    expect(renderBar({ ...state, done: 1000, etaMs: 0, columns: 70 })).toMatch(
      /^applying \[#+\] 1,000\/1,000 100% 50 ev\/s ETA 0:00$/,
    );
  });

  it('drops the bar on a narrow terminal and cuts the numbers rather than wrap', () => {
    expect(renderBar({ ...state, columns: 45 })).toBe('applying   250/1,000  25% 50 ev/s ETA 0:15');
    expect(renderBar({ ...state, columns: 20 })).toBe('applying   250/1,00');
    expect(renderBar({ ...state, columns: 0 })).toBe('');
  });

  it('shows an empty total as complete', () => {
    expect(renderBar({ ...state, done: 0, total: 0, rate: 0, etaMs: 0, columns: 60 })).toMatch(
      /\[#+\] 0\/0 100%/,
    );
  });
});

describe('eta, rates and durations', () => {
  it('estimates the time left from the rate, unknown before anything was applied', () => {
    expect(eta(500, 50)).toBe(10_000);
    expect(eta(0, 0)).toBe(0);
    expect(eta(10, 0)).toBeUndefined();
    expect(clock(undefined)).toBe('?');
    expect(clock(Infinity)).toBe('?');
    expect(clock(65_000)).toBe('1:05');
    expect(clock(3_725_000)).toBe('1:02:05');
    expect(clock(400)).toBe('0:01');
    expect(perSecond(10, 0)).toBe(0);
    expect(perSecond(30, 1500)).toBe(20);
    expect(seconds(12_345)).toBe('12.3 s');
  });
});

describe('ProgressReporter', () => {
  it('counts the rate over the applying phase only, not the silent phases before it', () => {
    const r = reporter(false);
    r.p.phase('stopping', 'checking the group');
    r.tick(4_000);
    r.p.phase('rewinding', 'offsets');
    r.tick(8_000);
    r.p.phase('applying', '600 events');
    r.p.applied(0, 600);
    r.tick(2_000);
    r.p.applied(200, 600);
    expect(r.p.rate()).toBe(100); // 200 in the 2 s of applying, not 200 in 14 s
    r.tick(4_000);
    r.p.applied(600, 600);
    const s = r.p.finish();
    expect(s).toEqual({
      events: 600,
      totalMs: 18_000,
      phaseMs: { stopping: 4_000, rewinding: 8_000, applying: 6_000 },
      countedPhase: 'applying',
      eventsPerSecond: 100,
    });
    expect(r.lines()).toEqual([
      'replay: stopping: checking the group',
      'replay: rewinding: offsets',
      'replay: applying: 600 events',
      'replay: applying 0/600 events (0%), 0 ev/s, ETA ?',
      'replay: applying 600/600 events (100%), 100 ev/s, ETA 0:00',
      'replay: done in 18.0 s',
    ]);
  });

  it('writes plain lines every 5 s, and where it got to when the phase ends', () => {
    const r = reporter(false);
    r.p.phase('applying', '1000 events');
    for (let i = 0; i <= 12; i++) {
      r.p.applied(i * 50, 1000);
      r.tick(1_000);
    }
    r.p.phase('swapping', 'tables');
    const progress = r.lines().filter((l) => / events \(/.test(l));
    expect(progress).toEqual([
      'replay: applying 0/1,000 events (0%), 0 ev/s, ETA ?',
      'replay: applying 250/1,000 events (25%), 50 ev/s, ETA 0:15',
      'replay: applying 500/1,000 events (50%), 50 ev/s, ETA 0:10',
      'replay: applying 600/1,000 events (60%), 46 ev/s, ETA 0:09',
    ]);
    expect(r.lines().at(-1)).toBe('replay: swapping: tables');
    expect(r.text()).not.toContain('\r');
  });

  it('names what it counts when told (verify counts aggregates)', () => {
    let text = '';
    let t = 0;
    const p = new ProgressReporter({
      tty: false,
      now: () => t,
      label: 'verify',
      unit: { many: 'aggregates', perSecond: 'agg/s' },
      write: (s) => (text += s),
    });
    p.phase('checking', 'about 100 aggregates');
    p.applied(0, 100);
    t += 1_000;
    p.applied(50, 100);
    p.finish();
    expect(text).toContain('verify: checking 50/100 aggregates (50%), 50 agg/s');
    expect(text).not.toContain('ev/s');
    expect(
      renderBar({
        label: 'checking',
        done: 1,
        total: 2,
        rate: 3,
        etaMs: 1_000,
        columns: 100,
        perSecond: 'agg/s',
      }),
    ).toContain('3 agg/s');
  });

  it('on a terminal redraws one bar in place, ending its line before the next phase', () => {
    const r = reporter(true, 80);
    r.p.phase('applying', '100 events');
    r.p.applied(0, 100);
    r.tick(1_000);
    r.p.applied(40, 100);
    r.p.phase('swapping', 'tables');
    expect(r.text()).toBe(
      'replay: applying: 100 events\n' +
        '\r\x1b[Kapplying [..............................]   0/100   0% 0 ev/s ETA ?' +
        '\r\x1b[Kapplying [############..................]  40/100  40% 40 ev/s ETA 0:02\n' +
        'replay: swapping: tables\n',
    );
  });

  it('ends the bar line once when closed after a failure', () => {
    const r = reporter(true, 40);
    r.p.close();
    r.p.phase('applying', '10 events');
    r.p.applied(5, 10);
    r.p.close();
    r.p.close();
    expect(r.text()).toBe(
      'replay: applying: 10 events\n' + '\r\x1b[Kapplying  5/10  50% 0 ev/s ETA ?\n',
    );
  });

  it('sums up a run in which nothing was counted', () => {
    const r = reporter(false);
    expect(r.p.rate()).toBe(0);
    r.p.phase('stopping', 'x');
    r.tick(10);
    expect(r.p.finish()).toEqual({
      events: 0,
      totalMs: 10,
      phaseMs: { stopping: 10 },
      countedPhase: undefined,
      eventsPerSecond: 0,
    });
  });
});
