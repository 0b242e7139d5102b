/**
 * The operations endpoint every long-running process serves: `/metrics` (Prometheus text format),
 * `/healthz` (the process is alive and its loop turns) and `/readyz` (connected and able to work;
 * 503 with the failing checks otherwise). Loopback by default.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';

/**
 * One registry for a /metrics page, each metric family once. Two registries of one process (the
 * demo's relay and sink) both collect the default metrics (`process_*`, `nodejs_*`); the text format
 * allows one family per name and Prometheus rejects a scrape that repeats one, so the first
 * registry's is kept. (`Registry.merge` would throw on the repeat.) Default labels of the given registries are
 * not carried over: none of ours sets any.
 */
export function mergeRegistries(registries: readonly Registry[]): Registry {
  const merged = new Registry();
  for (const registry of registries) {
    for (const { name } of registry.getMetricsAsArray()) {
      const metric = registry.getSingleMetric(name);
      if (metric && !merged.getSingleMetric(name)) merged.registerMetric(metric);
    }
  }
  return merged;
}

export interface ReadinessCheck {
  readonly ok: boolean;
  readonly detail?: string;
}

export interface OpsServerOptions {
  readonly port: number;
  /** Default 127.0.0.1; `0.0.0.0` in containers. */
  readonly host?: string;
  readonly registries: readonly Registry[];
  /** Named checks; ready when all are ok. A check that throws counts as not ok. */
  readonly readiness: () => Promise<Record<string, ReadinessCheck>>;
  /** Alive unless this returns false (e.g. the process entered `failed`). Default: always alive. */
  readonly liveness?: () => boolean;
}

export interface OpsServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startOpsServer(o: OpsServerOptions): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      try {
        if (req.method !== 'GET') {
          res.writeHead(405).end();
          return;
        }
        const path = (req.url ?? '/').split('?')[0];
        if (path === '/metrics') {
          const merged = mergeRegistries(o.registries);
          const text = await merged.metrics();
          res.writeHead(200, { 'content-type': merged.contentType });
          res.end(text);
        } else if (path === '/healthz') {
          const alive = o.liveness?.() ?? true;
          res.writeHead(alive ? 200 : 503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ alive }));
        } else if (path === '/readyz') {
          const checks = await o.readiness().catch((e: unknown) => ({
            readiness: { ok: false, detail: e instanceof Error ? e.message : String(e) },
          }));
          const ready = Object.values(checks).every((c) => c.ok);
          res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ ready, checks }));
        } else {
          res
            .writeHead(404, { 'content-type': 'text/plain' })
            .end('try /metrics, /healthz, /readyz');
        }
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e));
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => {
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${address}:${port}`,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      });
      return closing;
    },
  };
}
