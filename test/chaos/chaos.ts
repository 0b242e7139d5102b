/**
 * The chaos run: commands through the write side's public API, from writer processes, while writer,
 * relay and sink processes are killed with `kill -9` and the broker and MariaDB are restarted (with
 * a relay and a sink, or a sink, started again while the server is down: start-up must wait); then,
 * once the pipeline is quiet, MySQL is checked against MongoDB (every version applied once, in order,
 * the read model equal to the documents' state). Shared by `npm run chaos` (full size) and the short
 * variant in `npm test` (test/chaos/chaos.int.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import type { ServerHandle } from '../../infra/local/types.js';
import { testCatalog } from '../../relay/testing.js';
import { EventCodec } from '../../schemas/codec.js';
import { ConfluentRegistry } from '../../schemas/registry.js';
import { SHOP_MIGRATIONS } from '../support/shop-read-model.js';
import {
  APPLIED_LOG_MIGRATIONS,
  createTestDatabase,
  type TestDatabase,
} from '../../sink/testing.js';
import {
  checkEvents,
  compareReadModel,
  readAggregates,
  readApplied,
  unrelayed,
  waitQuiet,
} from './checks.js';
import { WriterProcess, writerOf, type WriterCommand } from './writers.js';

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
  /** At least this many `kill -9` of writer, relay and sink processes (all three kinds). */
  readonly kills: number;
  readonly brokerRestarts: number;
  readonly mysqlRestarts: number;
  readonly seed: number;
  /** Writer processes (default 2), each owning a share of the aggregates. */
  readonly writers?: number;
  /** Commands in flight over all writers (default 8). */
  readonly concurrency?: number;
  /** How long the pipeline may take to go quiet after the last fault. */
  readonly quietTimeoutMs?: number;
  /** Logs a progress line this often (default 30 s). */
  readonly progressEveryMs?: number;
  readonly log?: (line: string) => void;
}

export interface ChaosResult {
  readonly commands: number;
  readonly refused: number;
  readonly events: number;
  /** Every `kill -9`: writers' included (`killsBy` splits them). */
  readonly kills: number;
  readonly killsBy: { readonly writer: number; readonly relay: number; readonly sink: number };
  /** Commands in flight at a writer's kill (each sent again by its next process). */
  readonly inFlightAtWriterKills: number;
  readonly restarts: number;
  /** Relay and sink processes started while the broker or MariaDB was down (during a restart). */
  readonly startsWhileDown: number;
  /** Of those, the ones seen waiting for the server (`start-up: waiting for …`) instead of exiting. */
  readonly waitedWhileDown: number;
  /** Of those, the ones that exited while the server was down (start-up gave up: a bug). */
  readonly exitsWhileDown: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly reordered: number;
  /** `match`: the read model equals the documents' state, and MySQL applied no version MongoDB lacks
   * and no other event id than MongoDB's command records name. */
  readonly checksum: 'match' | 'MISMATCH';
  readonly mismatches: readonly string[];
  /** Outbox entries (in aggregate documents) still pending at the check: non-zero means the pipeline
   * never went quiet, and `lost` counts events not applied *yet*. */
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

/** Runs `fn` every `ms` until stopped (errors are ignored: a server may be restarting). */
function every(ms: number, fn: () => Promise<void>): { stop: () => Promise<void> } {
  const state: { stopped: boolean; wake: () => void } = { stopped: false, wake: () => undefined };
  const loop = (async () => {
    for (;;) {
      await new Promise<void>((r) => {
        state.wake = r;
        setTimeout(r, ms);
      });
      if (state.stopped) return;
      await fn().catch(() => undefined);
    }
  })();
  return {
    stop: async () => {
      state.stopped = true;
      state.wake();
      await loop;
    },
  };
}

/** A relay or sink child process that is restarted after every kill (writers: `WriterProcess`). */
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
        LOG_LEVEL: 'info',
        ...extra.relay,
      },
      'state changed',
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
      'state changed',
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

/**
 * `count` shop commands (test/support/shop.ts) over `aggregates` ids (half customers, half orders), each valid once those
 * before it applied: creates, renames, email changes, order lines added and removed, a few deletes.
 */
export function shopCommandStream(
  rnd: () => number,
  count: number,
  aggregates: number,
): WriterCommand[] {
  const model: Model = { customers: new Map(), orders: new Map() };
  const out: WriterCommand[] = [];
  for (let n = 0; out.length < count; n++) {
    const c = nextCommand(rnd, model, aggregates, n);
    if (!c) continue;
    track(model, c.name, c.input);
    out.push({ name: c.name, input: { ...c.input, commandId: String(c.input.commandId) } });
  }
  return out;
}

export async function runChaos(servers: ChaosServers, o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  const rnd = random(o.seed);
  const run = `chaos${o.seed}x${Date.now().toString(36)}`;
  const codec = new EventCodec(testCatalog(run), new ConfluentRegistry(servers.schemaRegistryUrl));
  await codec.registerAll();
  const mongo = new MongoClient(servers.mongodbUri, { serverSelectionTimeoutMS: 30_000 });
  await mongo.connect();
  const db: TestDatabase = await createTestDatabase(servers.mysqlUrl, servers.mysqlSinkUrl, run, [
    SHOP_MIGRATIONS,
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
  // The writers: each owns the aggregates `writerOf` gives it (no conflicts between them), and
  // runs a lane per aggregate inside, so the commands of one aggregate stay in order.
  const queue = shopCommandStream(rnd, o.commands, o.aggregates);
  const writerCount = Math.max(1, o.writers ?? 2);
  const lanes = Math.max(1, Math.ceil((o.concurrency ?? 8) / writerCount));
  const writers = Array.from(
    { length: writerCount },
    (_, i) =>
      new WriterProcess(
        `writer-${i}`,
        queue.filter((c) => writerOf(c, writerCount) === i),
        {
          MONGODB_URI: servers.mongodbUri,
          SCHEMA_REGISTRY_URL: servers.schemaRegistryUrl,
          WRITER_DATABASE: run,
          WRITER_LANES: String(lanes),
        },
      ),
  );
  const killsBy = { writer: 0, relay: 0, sink: 0 };
  const background: { stop: () => Promise<void> }[] = [];
  let kills = 0;
  let restarts = 0;
  const whileDown = { starts: 0, waited: 0, exits: 0 };
  /**
   * Stops `server`, starts `respawn` again while it is down, waits until each either logs that it
   * waits for a dependency or exits, then starts the server again.
   */
  const outage = async (
    server: ServerHandle | undefined,
    label: string,
    respawn: readonly Child[],
  ): Promise<void> => {
    if (!server?.start) {
      await server?.restart?.();
      return;
    }
    log(`stopping ${label}; starting ${respawn.map((c) => c.name).join(' and ')} while it is down`);
    await server.stop();
    try {
      for (const c of respawn) {
        await c.kill('SIGKILL');
        c.spawn();
        whileDown.starts++;
      }
      const waiting = (c: Child): boolean => c.output().includes('start-up: waiting for');
      const until = Date.now() + 60_000;
      while (Date.now() < until && !respawn.every((c) => c.exitedOnItsOwn || waiting(c))) {
        await sleep(200);
      }
      for (const c of respawn) {
        if (c.exitedOnItsOwn) {
          whileDown.exits++;
          log(`${c.name} exited while ${label} was down:\n${c.output().slice(-3000)}`);
        } else if (waiting(c)) whileDown.waited++;
      }
    } finally {
      log(`starting ${label} again`);
      await server.start();
    }
  };
  const settled = (): number => writers.reduce((n, w) => n + w.settled, 0);
  const writing = (): boolean => writers.some((w) => !w.complete);
  const tick = (): void => {
    for (const c of children) {
      if (c.exitedOnItsOwn) {
        log(
          `${c.name} exited on its own (${String(c.proc?.exitCode)}):\n${c.output().slice(-3000)}`,
        );
        c.spawn();
      }
    }
    for (const w of writers) {
      if (!w.alive && !w.complete) {
        log(`${w.name} exited on its own:\n${w.output().slice(-3000)}`);
        w.restart(true);
      }
    }
  };
  try {
    relay.spawn();
    sink.spawn();
    for (const w of writers) w.start();
    background.push(
      every(o.progressEveryMs ?? 30_000, async () => {
        const { pending } = await unrelayed(mongo, run);
        log(
          `progress after ${Math.round((Date.now() - started) / 1000)} s: ${settled()} of ${o.commands} commands returned, ${pending} entries pending; kills: ${killsBy.writer} writer, ${killsBy.relay} relay, ${killsBy.sink} sink`,
        );
      }),
    );

    // The fault injector: kills spread over the commands (the k-th once k/kills of them are done),
    // then, after the last command, until the quota is met; server restarts spread evenly too.
    const serverFaults: (() => Promise<void>)[] = [];
    for (let i = 0; i < o.brokerRestarts && servers.kafka?.restart; i++)
      serverFaults.push(() => outage(servers.kafka, 'the Kafka broker', [relay, sink]));
    for (let i = 0; i < o.mysqlRestarts && servers.mysql?.restart; i++)
      serverFaults.push(() => outage(servers.mysql, 'MariaDB', [sink]));
    if (servers.mongoKind === 'real' && servers.mongodb?.restart)
      serverFaults.push(async () => {
        log('restarting mongod');
        await servers.mongodb?.restart?.();
      });
    const faultCount = serverFaults.length;
    const nextFaultAt = (): number =>
      Math.floor(((faultCount - serverFaults.length + 1) * o.commands) / (faultCount + 1));
    // Kinds in turn, writers twice as often: they can only be killed while commands flow. While
    // they flow the injector polls often, so a fast machine cannot finish the commands between two
    // naps and leave the writers' turns unplayed; a turn waits for its kind to be up again.
    const turns = ['writer', 'relay', 'writer', 'sink'] as const;
    let turnSince = Date.now();
    while (writing() || kills < o.kills) {
      await sleep(writing() ? 20 + rnd() * 80 : 300 + rnd() * 1200);
      tick();
      if (writing() && settled() < (kills * o.commands) / Math.max(1, o.kills)) continue;
      const live = [
        ...children.filter((c) => c.running).map((c) => ({ kind: c.name, c })),
        ...writers.filter((w) => w.running).map((w) => ({ kind: 'writer', w })),
      ];
      const turn = turns[kills % turns.length];
      const wanted = live.filter((v) => v.kind === turn);
      const waited = Date.now() - turnSince;
      if (wanted.length === 0 && (turn !== 'writer' || writing()) && waited < 30_000) continue;
      const pool = wanted.length > 0 ? wanted : live;
      const victim = pool[Math.floor(rnd() * pool.length)];
      if (!victim) continue;
      if ('w' in victim) {
        await victim.w.kill('SIGKILL');
        victim.w.restart(true);
        killsBy.writer++;
      } else {
        await victim.c.kill('SIGKILL');
        victim.c.spawn();
        killsBy[victim.kind as 'relay' | 'sink']++;
      }
      kills++;
      turnSince = Date.now();
      if (serverFaults.length > 0 && settled() >= nextFaultAt()) {
        const fault = serverFaults.shift();
        if (fault) {
          await fault();
          restarts++;
        }
      }
    }
    for (const fault of serverFaults) {
      await fault();
      restarts++;
    }
    const applied = writers.reduce((n, w) => n + w.outcomes.size, 0);
    const refused = writers.reduce((n, w) => n + w.refused.size, 0);
    for (const w of writers) {
      for (const [id, code] of w.refused) log(`refused ${id}: ${code}`);
    }
    const inFlightAtWriterKills = writers.reduce(
      (n, w) => n + w.inFlightAtKills.reduce((a, b) => a + b, 0),
      0,
    );
    log(
      `commands done after ${Math.round((Date.now() - started) / 1000)} s: ${applied} returned, ${refused} refused; kills: ${killsBy.writer} writer (${inFlightAtWriterKills} commands in flight, sent again), ${killsBy.relay} relay, ${killsBy.sink} sink`,
    );

    // Quiet: no entry pending in any aggregate document, and every version applied.
    const quiet = await waitQuiet(mongo, run, db, o.quietTimeoutMs ?? 300_000, tick);
    if (!quiet.quiet) {
      log(
        `not quiet after the timeout: ${quiet.pending} pending, ${quiet.held} held, ${quiet.applied} of ${quiet.events} applied`,
      );
      log(
        `relay output:\n${relay.output().slice(-3000)}\nsink output:\n${sink.output().slice(-3000)}`,
      );
    } else {
      log(`quiet after ${Math.round((Date.now() - started) / 1000)} s: ${quiet.events} events`);
    }
    await relay.kill('SIGTERM');
    await sink.kill('SIGTERM');

    const aggregates = await readAggregates(mongo, run);
    const events = checkEvents(aggregates, await readApplied(db));
    const readModel = await compareReadModel(aggregates, db);
    log(readModel.summary);
    return {
      commands: applied,
      refused,
      events: events.events,
      kills,
      killsBy,
      inFlightAtWriterKills,
      restarts,
      startsWhileDown: whileDown.starts,
      waitedWhileDown: whileDown.waited,
      exitsWhileDown: whileDown.exits,
      lost: events.lost,
      duplicated: events.duplicated,
      reordered: events.reordered,
      checksum:
        readModel.same && events.phantom === 0 && events.idMismatches === 0 ? 'match' : 'MISMATCH',
      mismatches: [...events.mismatches, ...readModel.mismatches].slice(0, 40),
      pendingAtCheck: quiet.pending,
      seconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    for (const b of background) await b.stop();
    for (const w of writers) await w.kill('SIGKILL');
    for (const c of children) await c.kill('SIGKILL');
    await mongo.close();
    await db.drop().catch(() => undefined);
  }
}
