import { describe, expect, it } from '@jest/globals';
import { Counter, Registry } from 'prom-client';
import { pino } from 'pino';
import { startOpsServer } from './http.js';
import { startOpsEndpoint } from './process-runner.js';

describe('ops server', () => {
  it('serves metrics, liveness and readiness with the failing checks', async () => {
    const registry = new Registry();
    new Counter({ name: 'cqrs_sync_test_things_total', help: 'things', registers: [registry] }).inc(
      3,
    );
    let mysqlUp = true;
    let alive = true;
    const ops = await startOpsServer({
      port: 0,
      registries: [registry],
      readiness: () =>
        Promise.resolve({
          kafka: { ok: true },
          mysql: mysqlUp ? { ok: true } : { ok: false, detail: 'ECONNREFUSED' },
        }),
      liveness: () => alive,
    });
    try {
      const metrics = await fetch(`${ops.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('cqrs_sync_test_things_total 3');
      expect((await fetch(`${ops.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${ops.url}/readyz`)).status).toBe(200);
      mysqlUp = false;
      const unready = await fetch(`${ops.url}/readyz`);
      expect(unready.status).toBe(503);
      expect(await unready.json()).toEqual({
        ready: false,
        checks: { kafka: { ok: true }, mysql: { ok: false, detail: 'ECONNREFUSED' } },
      });
      alive = false;
      expect((await fetch(`${ops.url}/healthz`)).status).toBe(503);
      expect((await fetch(`${ops.url}/nope`)).status).toBe(404);
      expect((await fetch(`${ops.url}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await Promise.all([ops.close(), ops.close()]);
    }
  });

  it('reports a readiness probe that throws as not ready', async () => {
    const ops = await startOpsServer({
      port: 0,
      registries: [new Registry()],
      readiness: () => Promise.reject(new Error('lease state unknown')),
    });
    try {
      const res = await fetch(`${ops.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({
        ready: false,
        checks: { readiness: { ok: false, detail: 'lease state unknown' } },
      });
    } finally {
      await ops.close();
    }
  });
});

describe('startOpsEndpoint', () => {
  it('serves nothing without a port, and goes on without one whose port is taken', async () => {
    const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
    const logger = pino(
      { level: 'debug' },
      { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) },
    );
    const base = {
      log: logger,
      registries: [],
      readiness: () => Promise.resolve({}),
      liveness: () => true,
    };
    expect(await startOpsEndpoint({ ...base, port: undefined })).toBeUndefined();
    const first = await startOpsEndpoint({ ...base, port: 0 });
    if (!first) throw new Error('no endpoint');
    try {
      const port = Number(new URL(first.url).port);
      expect(await startOpsEndpoint({ ...base, port })).toBeUndefined();
      expect(lines.find((l) => l.msg === 'operations endpoint could not start')).toMatchObject({
        level: 50,
        port,
      });
    } finally {
      await first.close();
    }
  });
});
