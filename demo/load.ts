/**
 * `npm run demo:load -- --rate 500 --seconds 60 [--url http://127.0.0.1:3000] [--concurrency 32]`:
 * a steady load of commands against the demo's web API (register customers, rename them, create
 * orders with lines), then the throughput and latency. Bounded in count and time; loopback only.
 */
import { parseArgs } from 'node:util';
import { loadDemoTargetDefaults } from './web/config.js';

const MAX_RATE = 5000;
const MAX_SECONDS = 600;

interface Options {
  readonly url: URL;
  readonly rate: number;
  readonly seconds: number;
  readonly concurrency: number;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', default: loadDemoTargetDefaults().url },
      rate: { type: 'string', default: '100' },
      seconds: { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '32' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'Usage: npm run demo:load -- [--rate 500] [--seconds 60] [--url http://127.0.0.1:3000] [--concurrency 32]\n',
    );
    process.exit(0);
  }
  const int = (name: string, text: string, min: number, max: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new Error(`--${name} must be a whole number from ${min} to ${max} (got "${text}")`);
    }
    return n;
  };
  const url = new URL(values.url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new Error(
      `--url must be on this machine (127.0.0.1, localhost or [::1]), not ${url.hostname}`,
    );
  }
  return {
    url,
    rate: int('rate', values.rate, 1, MAX_RATE),
    seconds: int('seconds', values.seconds, 1, MAX_SECONDS),
    concurrency: int('concurrency', values.concurrency, 1, 256),
  };
}

interface Stats {
  sent: number;
  ok: number;
  failed: Map<number | string, number>;
  latencies: number[];
}

async function send(
  o: Options,
  stats: Stats,
  method: 'POST' | 'PATCH',
  path: string,
  body: unknown,
): Promise<string | undefined> {
  const started = performance.now();
  stats.sent++;
  try {
    const res = await fetch(new URL(path, o.url), {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const json = (await res.json()) as { aggregateId?: string };
    stats.latencies.push(performance.now() - started);
    if (res.status === 202) {
      stats.ok++;
      return json.aggregateId;
    }
    stats.failed.set(res.status, (stats.failed.get(res.status) ?? 0) + 1);
  } catch (e) {
    const key = e instanceof Error ? e.name : 'error';
    stats.failed.set(key, (stats.failed.get(key) ?? 0) + 1);
  }
  return undefined;
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const total = o.rate * o.seconds;
  const stats: Stats = { sent: 0, ok: 0, failed: new Map(), latencies: [] };
  const customers: string[] = [];
  let n = 0;
  const one = async (): Promise<void> => {
    const i = n++;
    const kind = i % 4;
    const customer = customers[Math.floor(Math.random() * customers.length)];
    if (kind === 0 || !customer) {
      const id = await send(o, stats, 'POST', '/api/customers', {
        name: `Load ${i}`,
        email: `load${i}@example.org`,
      });
      if (id && customers.length < 10_000) customers.push(id);
    } else if (kind === 1) {
      await send(o, stats, 'PATCH', `/api/customers/${customer}`, { name: `Load ${i} renamed` });
    } else {
      const order = await send(o, stats, 'POST', '/api/orders', { customerId: customer });
      if (order) {
        await send(o, stats, 'POST', `/api/orders/${order}/lines`, {
          sku: `SKU-${i % 50}`,
          quantity: 1 + (i % 5),
          unitPriceCents: 100 + (i % 1000),
        });
      }
    }
  };

  process.stdout.write(
    `demo:load: ${total} command groups at ${o.rate}/s for ${o.seconds} s against ${o.url.origin} (at most ${o.concurrency} in flight)\n`,
  );
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  const interrupted = { yes: false };
  process.once('SIGINT', () => {
    interrupted.yes = true;
  });
  let lastReport = started;
  const deadline = started + o.seconds * 1000;
  for (let i = 0; i < total && !interrupted.yes && performance.now() < deadline; i++) {
    const due = started + (i * 1000) / o.rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    while (inFlight.size >= o.concurrency) await Promise.race(inFlight);
    const p = one().finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (performance.now() - lastReport >= 5000) {
      lastReport = performance.now();
      const s = (lastReport - started) / 1000;
      process.stdout.write(
        `  ${s.toFixed(0)} s: ${stats.ok} accepted (${(stats.ok / s).toFixed(0)}/s)\n`,
      );
    }
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - started) / 1000;
  const sorted = [...stats.latencies].sort((a, b) => a - b);
  const pct = (p: number) =>
    (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0).toFixed(1);
  process.stdout.write(
    `done in ${seconds.toFixed(1)} s: ${stats.sent} requests, ${stats.ok} accepted (${(stats.ok / seconds).toFixed(0)} commands/s)` +
      `, latency p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms\n`,
  );
  if (n < total) {
    process.stdout.write(
      `stopped at the time limit: ${n} of ${total} command groups issued (the demo could not keep up with ${o.rate}/s)\n`,
    );
  }
  if (stats.failed.size > 0) {
    process.stdout.write(`failed: ${[...stats.failed].map(([k, v]) => `${k}: ${v}`).join(', ')}\n`);
    process.exitCode = 1;
  }
  process.stdout.write(
    'watch the query side catch up in the demo page (Pipeline: consumer lag).\n',
  );
}

main().catch((e: unknown) => {
  console.error(`demo:load: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
