import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { PipelineError } from '../schemas/errors.js';
import { runProcess, type RunnableProcess } from './process-runner.js';

function capture() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) },
  );
  return { logger, lines };
}

/** A process whose end the test decides; `stop()` ends it cleanly. */
function fakeProcess() {
  let end!: () => void;
  let crash!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    end = res;
    crash = rej;
  });
  done.catch(() => undefined);
  let stops = 0;
  const p: RunnableProcess = {
    done,
    stop: () => {
      stops++;
      end();
      return done;
    },
  };
  return { p, crash, stops: () => stops };
}

/** A signal source the test fires; counts registrations and removals. */
function signals() {
  let handler: ((signal?: string) => void) | undefined;
  let removed = 0;
  return {
    onSignal: (h: (signal?: string) => void) => {
      handler = h;
      return () => {
        removed++;
        handler = undefined;
      };
    },
    fire: (s = 'SIGTERM') => {
      handler?.(s);
    },
    removed: () => removed,
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('runProcess', () => {
  it('a signal stops the process: exit 0, the handler removed', async () => {
    const { logger, lines } = capture();
    const f = fakeProcess();
    const s = signals();
    const code = runProcess({ name: 'sink', logger, start: () => Promise.resolve(f.p), ...s });
    await tick();
    s.fire();
    expect(await code).toBe(0);
    expect(f.stops()).toBe(1);
    expect(s.removed()).toBe(1);
    expect(lines.map((l) => l.msg)).toContain('signal: stopping the sink');
  });

  it('a signal while starting aborts the start-up wait; a start-up stopped so is exit 0', async () => {
    const { logger } = capture();
    const s = signals();
    const code = runProcess({
      name: 'relay',
      logger,
      start: (signal) =>
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => {
            reject(new PipelineError('stopped', 'stopped while waiting', { retriable: false }));
          });
        }),
      ...s,
    });
    await tick();
    s.fire('SIGINT');
    expect(await code).toBe(0);
  });

  it('a signal that came while the start returned late is honoured once it is up', async () => {
    const { logger } = capture();
    const f = fakeProcess();
    const s = signals();
    let up!: (p: RunnableProcess) => void;
    const code = runProcess({
      name: 'sink',
      logger,
      start: () => new Promise((res) => (up = res)),
      ...s,
    });
    await tick();
    s.fire();
    up(f.p);
    expect(await code).toBe(0);
    expect(f.stops()).toBe(1);
  });

  it('a failure is exit 1, logged with its error, for a crash and for a start-up that failed', async () => {
    const { logger, lines } = capture();
    const f = fakeProcess();
    const crashed = runProcess({
      name: 'relay',
      logger,
      start: () => Promise.resolve(f.p),
      ...signals(),
    });
    await tick();
    f.crash(new Error('boom'));
    expect(await crashed).toBe(1);
    expect(lines.find((l) => l.msg === 'relay crashed')).toMatchObject({
      level: 50,
      err: { message: 'boom' },
    });
    const failed = await runProcess({
      name: 'sink',
      logger,
      start: () =>
        Promise.reject(new PipelineError('startup_timeout', 'gave up', { retriable: false })),
      ...signals(),
    });
    expect(failed).toBe(1);
  });

  it('a second signal exits at once, non-zero', async () => {
    const { logger, lines } = capture();
    const s = signals();
    const exits: number[] = [];
    const never: RunnableProcess = {
      done: new Promise(() => undefined),
      stop: () => new Promise(() => undefined),
    };
    void runProcess({
      name: 'sink',
      logger,
      start: () => Promise.resolve(never),
      exit: (c) => exits.push(c),
      ...s,
    });
    await tick();
    s.fire();
    expect(exits).toEqual([]);
    s.fire();
    expect(exits).toEqual([1]);
    expect(lines.some((l) => l.msg.startsWith('second signal'))).toBe(true);
  });
});
