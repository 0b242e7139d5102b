/**
 * The chaos run: commands through the write side's public API while relay and sink processes are
 * killed with `kill -9` and the broker and MariaDB are restarted; then, once the pipeline is quiet,
 * the read model is checked against the write side. Shared by `npm run chaos` (full size) and the
 * short variant in `npm test` (test/chaos/chaos.int.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { demoCommands } from '../../demo/domain/commands.js';
import { demoMigrations } from '../../demo/read-model/projections.js';
import type { ServerHandle } from '../../infra/local/types.js';
import { testCatalog } from '../../relay/testing.js';
import { EventCodec } from '../../schemas/codec.js';
import { ConfluentRegistry } from '../../schemas/registry.js';
import {
  APPLIED_LOG_MIGRATIONS,
  createTestDatabase,
  type TestDatabase,
} from '../../sink/testing.js';
import { MongoWriteStore } from '../../write/mongo-store.js';
import { aggregateCollectionName } from '../../write/outbox.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

export interface ChaosServers {
  readonly kafkaBrokers: readonly string[];
  readonly schemaRegistryUrl: string;
  readonly mysqlUrl: string;
  readonly mysqlSinkUrl: string;
  readonly mongodbUri: string;
  readonly mongoKind: 'real' | 'stand-in';
  /** Restartable servers (local ones); a missing one is not restarted. */
  readonly kafka?: ServerHandle;
  readonly mysql?: ServerHandle;
  readonly mongodb?: ServerHandle;
}

export interface ChaosOptions {
  readonly commands: number;
  readonly aggregates: number;
  /** At least this many `kill -9` of relay and sink processes. */
  readonly kills: number;
  readonly brokerRestarts: number;
  readonly mysqlRestarts: number;
  readonly seed: number;
  readonly concurrency?: number;
  /** How long the pipeline may take to go quiet after the last fault. */
  readonly quietTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

export interface ChaosResult {
  readonly commands: number;
  readonly refused: number;
  readonly events: number;
  readonly kills: number;
  readonly restarts: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly reordered: number;
  readonly checksum: 'match' | 'MISMATCH';
  readonly mismatches: readonly string[];
  /** Outbox entries still pending at the check: non-zero means the pipeline never went quiet, and
   * `lost` counts events not applied *yet*. */
  readonly pendingAtCheck: number;
  readonly seconds: number;
}

export function chaosLine(r: ChaosResult): string {
  return `chaos: commands=${r.commands} kills=${r.kills} restarts=${r.restarts} lost=${r.lost} duplicated=${r.duplicated} reordered=${r.reordered} checksum=${r.checksum}`;
}

/** mulberry32: small, seeded, good enough to pick commands and moments. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A relay or sink child process that is restarted after every kill. */
export class Child {
  proc: ChildProcess | undefined;
  private up = false;
  private out = '';

  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    private readonly readyMarker: string,
  ) {}

  spawn(): void {
    this.up = false;
    this.out = '';
    const proc = spawn(process.execPath, ['--import', 'tsx', ...this.args], {
      cwd: root,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer): void => {
      this.out = (this.out + d.toString()).slice(-64_000);
      if (!this.up && this.out.includes(this.readyMarker)) this.up = true;
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    this.proc = proc;
  }

  get running(): boolean {
    return this.up && this.proc?.exitCode === null && this.proc.signalCode === null;
  }

  get exitedOnItsOwn(): boolean {
    return this.proc !== undefined && this.proc.exitCode !== null;
  }

  output(): string {
    return this.out;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) =>
      p.once('exit', () => {
        r();
      }),
    );
    p.kill(signal);
    await gone;
  }
}

/**
 * The relay and the sink of run `run` as child processes (not started yet): the relay on the outbox
 * in database `run`, the sink on the topics `<run>.*` into `db`, each with `extra` settings.
 */
export function pipelineChildren(
  run: string,
  servers: Pick<ChaosServers, 'kafkaBrokers' | 'schemaRegistryUrl' | 'mongodbUri'>,
  db: Pick<TestDatabase, 'adminUrl' | 'sinkUrl'>,
  extra: { relay?: Record<string, string>; sink?: Record<string, string> } = {},
): { relay: Child; sink: Child } {
  const common = {
    KAFKA_BROKERS: servers.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: servers.schemaRegistryUrl,
  };
  return {
    relay: new Child(
      'relay',
      [path.join(root, 'relay', 'testing-child.ts'), run, 'run'],
      {
        ...common,
        MONGODB_URI: servers.mongodbUri,
        RELAY_OUTBOX_DATABASE: run,
        RELAY_LOG_LEVEL: 'info',
        ...extra.relay,
      },
      'relay state',
    ),
    sink: new Child(
      'sink',
      [path.join(root, 'sink', 'fixtures', 'sink-child.ts'), `${run}.`],
      {
        ...common,
        MYSQL_URL: db.adminUrl,
        MYSQL_SINK_URL: db.sinkUrl,
        SINK_GROUP_ID: `${run}-sink`,
        SINK_DLT_TOPIC: `${run}.dlt`,
        LOG_LEVEL: 'info',
        ...extra.sink,
      },
      'sink starting',
    ),
  };
}

interface Model {
  customers: Map<string, 'live' | 'deleted'>;
  orders: Map<string, { state: 'live' | 'deleted'; lines: number; nextLine: number }>;
}

/** The next command: creates, updates and deletes over `aggregates` ids (customers and orders). */
function nextCommand(
  rnd: () => number,
  model: Model,
  aggregates: number,
  n: number,
): { name: string; input: Record<string, unknown> } | undefined {
  const commandId = `cmd-${n}`;
  const half = Math.max(1, Math.floor(aggregates / 2));
  if (rnd() < 0.5) {
    const customerId = `c-${Math.floor(rnd() * half)}`;
    const c = model.customers.get(customerId);
    if (c === 'deleted') return undefined;
    if (!c) {
      return {
        name: 'RegisterCustomer',
        input: { commandId, customerId, name: `N${n}`, email: `c${n}@x.io` },
      };
    }
    const r = rnd();
    if (r < 0.005) return { name: 'DeleteCustomer', input: { commandId, customerId } };
    if (r < 0.6) return { name: 'RenameCustomer', input: { commandId, customerId, name: `N${n}` } };
    return { name: 'ChangeCustomerEmail', input: { commandId, customerId, email: `e${n}@x.io` } };
  }
  const orderId = `o-${Math.floor(rnd() * (aggregates - half))}`;
  const o = model.orders.get(orderId);
  if (o?.state === 'deleted') return undefined;
  if (!o) {
    return {
      name: 'CreateOrder',
      input: { commandId, orderId, customerId: `c-${Math.floor(rnd() * half)}` },
    };
  }
  const r = rnd();
  if (r < 0.005) return { name: 'DeleteOrder', input: { commandId, orderId } };
  if (r < 0.3 && o.lines > 0) {
    return { name: 'RemoveOrderLine', input: { commandId, orderId, lineId: `l${o.nextLine - 1}` } };
  }
  return {
    name: 'AddOrderLine',
    input: {
      commandId,
      orderId,
      lineId: `l${o.nextLine}`,
      sku: `sku-${n % 97}`,
      quantity: 1 + (n % 5),
      unitPriceCents: 100 + (n % 900),
    },
  };
}

function track(model: Model, name: string, input: Record<string, unknown>): void {
  const c = typeof input.customerId === 'string' ? input.customerId : '';
  const o = typeof input.orderId === 'string' ? input.orderId : '';
  switch (name) {
    case 'RegisterCustomer':
      model.customers.set(c, 'live');
      break;
    case 'DeleteCustomer':
      model.customers.set(c, 'deleted');
      break;
    case 'CreateOrder':
      model.orders.set(o, { state: 'live', lines: 0, nextLine: 0 });
      break;
    case 'DeleteOrder': {
      const s = model.orders.get(o);
      if (s) s.state = 'deleted';
      break;
    }
    case 'AddOrderLine': {
      const s = model.orders.get(o);
      if (s) {
        s.lines++;
        s.nextLine++;
      }
      break;
    }
    case 'RemoveOrderLine': {
      const s = model.orders.get(o);
      if (s) {
        s.lines--;
        s.nextLine--;
      }
      break;
    }
  }
}

export async function runChaos(servers: ChaosServers, o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  const rnd = random(o.seed);
  const run = `chaos${o.seed}x${Date.now().toString(36)}`;
  const catalog = testCatalog(run);
  const codec = new EventCodec(catalog, new ConfluentRegistry(servers.schemaRegistryUrl));
  await codec.registerAll();
  const mongo = new MongoClient(servers.mongodbUri, { serverSelectionTimeoutMS: 30_000 });
  await mongo.connect();
  const db: TestDatabase = await createTestDatabase(servers.mysqlUrl, servers.mysqlSinkUrl, run, [
    await demoMigrations(),
    APPLIED_LOG_MIGRATIONS,
  ]);
  const { relay, sink } = pipelineChildren(run, servers, db, {
    relay: {
      RELAY_BATCH_SIZE: '500',
      RELAY_LEASE_TTL_MS: '3000',
      RELAY_LEASE_RENEW_MS: '1000',
      RELAY_STANDBY_POLL_MS: '300',
      RELAY_SCAN_INTERVAL_MS: '1000',
      RELAY_RETRY_MAX_MS: '2000',
      RELAY_TOPIC_PARTITIONS: '3',
    },
    sink: {
      SINK_BATCH_SIZE: '200',
      SINK_RETRY_INITIAL_MS: '100',
      SINK_RETRY_MAX_MS: '2000',
      SINK_SESSION_TIMEOUT_MS: '6000',
      SINK_HEARTBEAT_INTERVAL_MS: '500',
    },
  });
  const children = [relay, sink];
  let kills = 0;
  let restarts = 0;
  try {
    relay.spawn();
    sink.spawn();
    const store = new MongoWriteStore({
      client: mongo,
      database: run,
      logger: pino({ level: 'error' }),
    });
    const commands = demoCommands(store, codec) as unknown as Record<
      string,
      (input: Record<string, unknown>) => Promise<unknown>
    >;

    // The writer: `concurrency` lanes, each owning a share of the aggregates (no conflicts).
    const model: Model = { customers: new Map(), orders: new Map() };
    let issued = 0;
    let refused = 0;
    const progress = { writing: true };
    const lanes = o.concurrency ?? 8;
    const queue: { name: string; input: Record<string, unknown> }[] = [];
    for (let n = 0; queue.length < o.commands; n++) {
      const c = nextCommand(rnd, model, o.aggregates, n);
      if (!c) continue;
      track(model, c.name, c.input);
      queue.push(c);
    }
    // Commands of one aggregate stay in order: one lane per aggregate id (hash).
    const laneOf = (c: { input: Record<string, unknown> }): number => {
      const id = String(
        c.input.customerId && !c.input.orderId ? c.input.customerId : c.input.orderId,
      );
      let h = 0;
      for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) | 0;
      return Math.abs(h) % lanes;
    };
    const writer = Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (const c of queue) {
          if (laneOf(c) !== lane) continue;
          for (let attempt = 1; ; attempt++) {
            try {
              await (commands[c.name] ?? (() => Promise.reject(new Error(c.name))))(c.input);
              issued++;
              break;
            } catch (e) {
              // MongoDB is never the one restarted here unless real; a domain refusal is final.
              if ((e as { retriable?: boolean }).retriable && attempt < 20) {
                await sleep(200);
                continue;
              }
              refused++;
              log(`refused ${c.name} ${JSON.stringify(c.input)}: ${String(e)}`);
              break;
            }
          }
        }
      }),
    ).finally(() => {
      progress.writing = false;
    });

    // The fault injector: kills while commands flow (and after, until the quota is met), with the
    // server restarts spread over the run.
    const serverFaults: (() => Promise<void>)[] = [];
    for (let i = 0; i < o.brokerRestarts && servers.kafka?.restart; i++)
      serverFaults.push(async () => {
        log('restarting the Kafka broker');
        await servers.kafka?.restart?.();
      });
    for (let i = 0; i < o.mysqlRestarts && servers.mysql?.restart; i++)
      serverFaults.push(async () => {
        log('restarting MariaDB');
        await servers.mysql?.restart?.();
      });
    if (servers.mongoKind === 'real' && servers.mongodb?.restart)
      serverFaults.push(async () => {
        log('restarting mongod');
        await servers.mongodb?.restart?.();
      });
    // Server restarts spread evenly over the commands (the k-th after k/(F+1) of them).
    const faultCount = serverFaults.length;
    const nextFaultAt = (): number =>
      Math.floor(((faultCount - serverFaults.length + 1) * o.commands) / (faultCount + 1));
    while (progress.writing || kills < o.kills) {
      await sleep(300 + rnd() * 1200);
      const live = children.filter((c) => c.running);
      const victim = live[Math.floor(rnd() * live.length)];
      if (victim) {
        await victim.kill('SIGKILL');
        kills++;
        victim.spawn();
        if (serverFaults.length > 0 && issued + refused >= nextFaultAt()) {
          const fault = serverFaults.shift();
          if (fault) {
            await fault();
            restarts++;
          }
        }
      }
      for (const c of children) {
        if (c.exitedOnItsOwn) {
          log(
            `${c.name} exited on its own (${String(c.proc?.exitCode)}):\n${c.output().slice(-3000)}`,
          );
          c.spawn();
        }
      }
    }
    for (const fault of serverFaults) {
      await fault();
      restarts++;
    }
    await writer;
    log(`commands done: ${issued} applied by the write side, ${refused} refused; ${kills} kills`);

    // Quiet: every outbox entry relayed and applied once.
    const outbox = mongo.db(run).collection('outbox');
    const total = await outbox.countDocuments({});
    const deadline = Date.now() + (o.quietTimeoutMs ?? 300_000);
    let pendingAtCheck = 0;
    for (;;) {
      for (const c of children) if (c.exitedOnItsOwn) c.spawn();
      const pending = await outbox.countDocuments({ status: 'pending' });
      pendingAtCheck = pending;
      const [row] = await db
        .query<{ n: number }>('SELECT COUNT(DISTINCT event_id) AS n FROM applied_log')
        .catch(() => [{ n: -1 }]);
      if (pending === 0 && Number(row?.n) === total) break;
      if (Date.now() > deadline) {
        log(
          `not quiet after the timeout: ${pending} pending, ${String(row?.n)} of ${total} applied`,
        );
        log(
          `relay output:\n${relay.output().slice(-3000)}\nsink output:\n${sink.output().slice(-3000)}`,
        );
        break;
      }
      await sleep(500);
    }
    await relay.kill('SIGTERM');
    await sink.kill('SIGTERM');

    // Exactly once, in order.
    const entries = await outbox
      .find({}, { projection: { eventId: 1, aggregateId: 1, version: 1, status: 1 } })
      .toArray();
    const applied = await db.query<{ event_id: string; aggregate_id: string; version: number }>(
      'SELECT event_id, aggregate_id, CAST(version AS SIGNED) AS version FROM applied_log ORDER BY n',
    );
    const appliedIds = new Set(applied.map((a) => a.event_id));
    const lost = entries.filter((e) => !appliedIds.has(String(e.eventId))).length;
    const duplicated = applied.length - appliedIds.size;
    const last = new Map<string, number>();
    let reordered = 0;
    for (const a of applied) {
      const v = a.version;
      if ((last.get(a.aggregate_id) ?? 0) >= v) reordered++;
      last.set(a.aggregate_id, v);
    }

    // The read model against the write side's state, row by row.
    const mismatches: string[] = [];
    const writeRows = async (
      type: string,
      row: (id: string, s: Record<string, unknown>, v: number) => string,
    ) =>
      (
        await mongo
          .db(run)
          .collection(aggregateCollectionName(type))
          .find({ deleted: { $ne: true } })
          .toArray()
      )
        .map((d) =>
          row(String(d._id), (d.state ?? {}) as Record<string, unknown>, Number(d.version)),
        )
        .sort();
    const readRows = async (sql: string) =>
      (await db.query(sql)).map((r) => Object.values(r).map(String).join('|')).sort();
    const sum = (rows: readonly string[]): string =>
      createHash('sha256').update(rows.join('\n')).digest('hex');
    const compare = (what: string, write: string[], read: string[]): boolean => {
      const inRead = new Set(read);
      const inWrite = new Set(write);
      for (const x of write) if (!inRead.has(x)) mismatches.push(`${what}: write side only: ${x}`);
      for (const x of read) if (!inWrite.has(x)) mismatches.push(`${what}: read model only: ${x}`);
      return sum(write) === sum(read);
    };
    const customersW = await writeRows(
      'Customer',
      (id, s, v) => `${id}|${String(s.name)}|${String(s.email)}|${v}`,
    );
    const customersR = await readRows(
      'SELECT id, name, email, CAST(version AS SIGNED) AS v FROM customers',
    );
    const ordersW = await writeRows(
      'Order',
      (id, s, v) =>
        `${id}|${String(s.customerId)}|${String(s.status)}|${String(s.totalCents)}|${v}`,
    );
    const ordersR = await readRows(
      'SELECT id, customer_id, status, CAST(total_cents AS SIGNED) AS t, CAST(version AS SIGNED) AS v FROM orders',
    );
    const linesW = (
      await mongo
        .db(run)
        .collection(aggregateCollectionName('Order'))
        .find({ deleted: { $ne: true } })
        .toArray()
    )
      .flatMap((d) =>
        (((d.state ?? {}) as { lines?: Record<string, unknown>[] }).lines ?? []).map(
          (l) =>
            `${String(d._id)}|${String(l.lineId)}|${String(l.sku)}|${String(l.quantity)}|${String(l.unitPriceCents)}`,
        ),
      )
      .sort();
    const linesR = await readRows(
      'SELECT order_id, line_id, sku, CAST(quantity AS SIGNED) AS q, CAST(unit_price_cents AS SIGNED) AS p FROM order_lines',
    );
    const same = [
      compare('customers', customersW, customersR),
      compare('orders', ordersW, ordersR),
      compare('order_lines', linesW, linesR),
    ].every(Boolean);
    log(
      `read model: ${customersR.length} customers, ${ordersR.length} orders, ${linesR.length} lines; write side: ${customersW.length}, ${ordersW.length}, ${linesW.length}`,
    );
    return {
      commands: issued,
      refused,
      events: entries.length,
      kills,
      restarts,
      lost,
      duplicated,
      reordered,
      checksum: same ? 'match' : 'MISMATCH',
      mismatches: mismatches.slice(0, 20),
      pendingAtCheck,
      seconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    for (const c of children) await c.kill('SIGKILL');
    await mongo.close();
    await db.drop().catch(() => undefined);
  }
}
