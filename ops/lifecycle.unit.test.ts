import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { pino } from 'pino';
import { Lifecycle, type LifecycleOptions } from './lifecycle.js';

type Line = { level: number; msg: string; from?: string; to?: string; [k: string]: unknown };

function capture() {
  const lines: Line[] = [];
  const log = pino(
    { level: 'debug' },
    { write: (l: string) => void lines.push(JSON.parse(l) as Line) },
  ).child({ component: 'test' });
  return { log, lines };
}

/** A promise settled from outside (the drain or close of a fake process). */
function gate() {
  let open!: () => void;
  let fail!: (e: unknown) => void;
  const p = new Promise<void>((res, rej) => {
    open = res;
    fail = rej;
  });
  return { p, open, fail };
}

function lifecycle(extra: Partial<LifecycleOptions> = {}) {
  const { log, lines } = capture();
  const calls: string[] = [];
  const l = new Lifecycle({
    log,
    graceMs: 1000,
    closeTimeoutMs: 500,
    drain: () => {
      calls.push('drain');
      return Promise.resolve();
    },
    close: () => {
      calls.push('close');
      return Promise.resolve();
    },
    ...extra,
  });
  const transitions = () =>
    lines.filter((x) => x.msg === 'state changed').map((x) => `${x.from ?? ''}>${x.to ?? ''}`);
  return { l, lines, calls, transitions };
}

/** Lets the promise chains run (fake timers do not advance microtasks by themselves). */
const settle = () => jest.advanceTimersByTimeAsync(0);

beforeEach(() => {
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

describe('Lifecycle', () => {
  it('logs every transition in one shape: message "state changed", from, to and the fields given', async () => {
    const { l, lines, transitions } = lifecycle({ fields: { group: 'g' } });
    expect(l.state).toBe('starting');
    l.running({ topics: ['a'] });
    await l.stop(() => ({ counts: 3 }));
    expect(transitions()).toEqual([
      '>starting',
      'starting>running',
      'running>draining',
      'draining>stopped',
    ]);
    expect(lines[0]).toMatchObject({ component: 'test', to: 'starting', group: 'g', level: 30 });
    expect(lines[1]).toMatchObject({ topics: ['a'] });
    expect(lines[3]).toMatchObject({ counts: 3 });
    await expect(l.done).resolves.toBeUndefined();
  });

  it('stop() is idempotent: one drain, one close, one promise', async () => {
    const { l, calls, transitions } = lifecycle();
    l.running();
    const a = l.stop();
    const b = l.stop();
    expect(a).toBe(b);
    await a;
    await l.stop();
    expect(calls).toEqual(['drain', 'close']);
    expect(transitions().filter((t) => t.endsWith('>stopped'))).toHaveLength(1);
  });

  it('after the grace period it closes anyway, says it forced, and resolves', async () => {
    const drain = gate();
    const { l, lines, calls } = lifecycle({
      drain: () => drain.p,
      close: () => {
        calls.push('close');
        return Promise.resolve();
      },
    });
    l.running();
    let stopped = false;
    void l.stop().then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(999);
    expect(calls).toEqual([]);
    expect(stopped).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(stopped).toBe(true);
    expect(calls).toEqual(['close']);
    expect(l.state).toBe('stopped');
    expect(lines.find((x) => x.msg.startsWith('stop forced'))).toMatchObject({
      level: 40,
      graceMs: 1000,
    });
  });

  it('has a hard limit on closing: a close that hangs is left behind and stop() resolves', async () => {
    const { l, lines } = lifecycle({ close: () => gate().p });
    l.running();
    let stopped = false;
    void l.stop().then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(499);
    expect(stopped).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(stopped).toBe(true);
    expect(lines.find((x) => x.msg.includes('did not close in time'))).toMatchObject({
      closeTimeoutMs: 500,
    });
    await expect(l.done).resolves.toBeUndefined();
  });

  it('a drain or close that throws is logged and the stop goes on', async () => {
    const { l, lines } = lifecycle({
      drain: () => Promise.reject(new Error('drain broke')),
      close: () => Promise.reject(new Error('close broke')),
    });
    l.running();
    await l.stop();
    expect(l.state).toBe('stopped');
    expect(lines.filter((x) => x.msg.endsWith('failed while stopping')).map((x) => x.step)).toEqual(
      ['drain', 'close'],
    );
  });

  it('stop() during start-up has nothing to drain: starting > stopped, closed', async () => {
    const { l, calls, transitions } = lifecycle();
    await l.stop();
    expect(calls).toEqual(['close']);
    expect(transitions()).toEqual(['>starting', 'starting>stopped']);
    l.running(); // a start-up that returns late does not bring it back
    expect(l.state).toBe('stopped');
  });

  it('fail() logs an error with err, halts, closes once and rejects done; later stops and fails are no-ops', async () => {
    const { l, lines, calls, transitions } = lifecycle();
    l.running();
    const boom = new Error('boom');
    await l.fail(boom, () => {
      calls.push('halt');
      return Promise.resolve();
    });
    await expect(l.done).rejects.toBe(boom);
    expect(lines.find((x) => x.to === 'failed')).toMatchObject({
      level: 50,
      from: 'running',
      err: { message: 'boom' },
    });
    await l.stop();
    await l.fail(new Error('again'));
    expect(calls).toEqual(['halt', 'close']);
    expect(transitions()).toEqual(['>starting', 'starting>running', 'running>failed']);
  });

  it('a failure while draining wins: done rejects, the close runs once, no "stopped"', async () => {
    const drain = gate();
    const { l, calls, transitions } = lifecycle({
      drain: () => drain.p,
      close: () => {
        calls.push('close');
        return Promise.resolve();
      },
    });
    l.running();
    const stopping = l.stop();
    await settle();
    const failing = l.fail(new Error('batch broke'));
    drain.open();
    await Promise.all([stopping, failing]);
    await expect(l.done).rejects.toThrow('batch broke');
    expect(calls).toEqual(['close']);
    expect(transitions()).toEqual([
      '>starting',
      'starting>running',
      'running>draining',
      'draining>failed',
    ]);
  });

  it('ended says whether anything still runs', async () => {
    const { l } = lifecycle();
    expect(l.ended).toBe(false);
    l.running();
    expect(l.ended).toBe(false);
    await l.stop();
    expect(l.ended).toBe(true);
  });
});
