import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { PipelineError } from '../schemas/errors.js';
import { StartupWait, addressOf, type Dependency } from './startup.js';

function capture() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) },
  );
  return { logger, lines };
}

const wait = (logger: ReturnType<typeof capture>['logger'], extra = {}) =>
  new StartupWait({
    logger,
    timeoutMs: 0,
    setting: 'X_STARTUP_TIMEOUT_MS',
    backoff: { initialMs: 5, maxMs: 20 },
    ...extra,
  });

/** Fails `n` times with `error`, then succeeds. */
function flaky(name: string, n: number, error: () => Error = () => new Error('ECONNREFUSED')) {
  let calls = 0;
  const dep: Dependency = {
    name,
    address: 'db:3306/read',
    check: () => (++calls <= n ? Promise.reject(error()) : Promise.resolve()),
  };
  return { dep, calls: () => calls };
}

describe('StartupWait', () => {
  it('retries each dependency in order, one warning per failed attempt naming it, its address and the error', async () => {
    const { logger, lines } = capture();
    const w = wait(logger);
    const a = flaky('mysql', 2);
    const b = flaky('kafka', 1);
    expect(w.readiness()).toEqual({ ok: false, detail: 'starting' });
    await w.waitFor([a.dep, b.dep]);
    expect([a.calls(), b.calls(), w.done, w.readiness().ok]).toEqual([3, 2, true, true]);
    const warnings = lines.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings).toEqual([
      'start-up: waiting for mysql at db:3306/read: ECONNREFUSED',
      'start-up: waiting for mysql at db:3306/read: ECONNREFUSED',
      'start-up: waiting for kafka at db:3306/read: ECONNREFUSED',
    ]);
    expect(lines.some((l) => l.msg === 'start-up: mysql at db:3306/read is available')).toBe(true);
  });

  it('reports what it waits for on readiness', async () => {
    const { logger } = capture();
    const controller = new AbortController();
    const w2 = wait(logger, {
      signal: controller.signal,
      backoff: { initialMs: 10_000, maxMs: 10_000 },
    });
    const running = w2.waitFor([flaky('topics', 1, () => new Error('t does not exist yet')).dep]);
    await new Promise((r) => setTimeout(r, 20));
    expect(w2.readiness()).toEqual({
      ok: false,
      detail: 'waiting for topics at db:3306/read (attempt 1): t does not exist yet',
    });
    controller.abort();
    await expect(running).rejects.toMatchObject({ code: 'stopped', retriable: false });
    expect(w2.done).toBe(false);
  });

  it('fails at once on a non-retriable error: waiting cannot fix bad settings', async () => {
    const { logger, lines } = capture();
    const bad = flaky(
      'mysql',
      5,
      () => new PipelineError('config_invalid', 'no table x', { retriable: false }),
    );
    await expect(wait(logger).waitFor([bad.dep])).rejects.toMatchObject({ code: 'config_invalid' });
    expect(bad.calls()).toBe(1);
    expect(lines.at(-1)?.level).toBe(50);
  });

  it('gives up after the timeout with the setting, the dependency and the last error', async () => {
    const { logger } = capture();
    const never = flaky('kafka', Infinity);
    await expect(wait(logger, { timeoutMs: 60 }).waitFor([never.dep])).rejects.toMatchObject({
      code: 'startup_timeout',
      retriable: false,
      message: expect.stringMatching(
        /^gave up after \d+ ms \(X_STARTUP_TIMEOUT_MS=60\) waiting for kafka at db:3306\/read: ECONNREFUSED$/,
      ) as unknown,
    });
  });

  it('counts an attempt that hangs as failed', async () => {
    const { logger } = capture();
    let calls = 0;
    const hangsOnce: Dependency = {
      name: 'mongodb',
      address: 'm:27017',
      check: () => (++calls === 1 ? new Promise(() => undefined) : Promise.resolve()),
    };
    await wait(logger, { attemptTimeoutMs: 20 }).waitFor([hangsOnce]);
    expect(calls).toBe(2);
  });

  it('ends at once when aborted before or during a check', async () => {
    const { logger } = capture();
    const before = new AbortController();
    before.abort();
    await expect(
      wait(logger, { signal: before.signal }).waitFor([flaky('kafka', 0).dep]),
    ).rejects.toMatchObject({ code: 'stopped' });
    const during = new AbortController();
    const hanging: Dependency = {
      name: 'kafka',
      address: 'k:9092',
      check: () => new Promise(() => undefined),
    };
    const running = wait(logger, { signal: during.signal }).waitFor([hanging]);
    during.abort();
    await expect(running).rejects.toMatchObject({
      message: 'stopped while waiting for kafka at k:9092',
    });
  });
});

describe('addressOf', () => {
  it('keeps host, port and database, drops credentials and options', () => {
    expect(addressOf('mysql://sink:s3cret@db.local:3306/read?ssl=true')).toBe('db.local:3306/read');
    expect(addressOf('mongodb://u:p@a:27017,b:27018/cqrs?replicaSet=rs0')).toBe(
      'a:27017,b:27018/cqrs',
    );
    expect(addressOf('mongodb+srv://cluster.example.net/')).toBe('cluster.example.net');
    expect(addressOf('not a url')).toBe('not a url');
  });
});
