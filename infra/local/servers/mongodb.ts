import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { MongoClient, Timestamp } from 'mongodb';
import { HarnessError } from '../errors.js';
import { LocalServer } from '../local-server.js';
import { choosePort } from '../ports.js';
import { sleep } from '../process.js';
import { which } from '../tools.js';
import type { ServerContext, ServerHandle } from '../types.js';
import { installJavaServer, scriptsDir } from './java-server.js';

/** What a MongoDB deployment can do, found by asking it rather than trusting its version string. */
export interface MongoCapabilities {
  readonly version: string;
  /** A real mongod/mongos (its buildInfo has a gitVersion; the stand-in's never does). */
  readonly real: boolean;
  readonly transactions: boolean;
  readonly changeStreams: boolean;
}

export type MongoKind = 'real' | 'stand-in';

export interface MongoHandle extends ServerHandle {
  readonly kind: MongoKind;
  readonly capabilities: MongoCapabilities;
}

const REPL_SET = 'rs0';

/**
 * Chooses the MongoDB for this run, most real first: `MONGODB_URI`; a `mongod` binary (`MONGOD_BIN`
 * or on PATH) run as a one-node replica set; a download by mongodb-memory-server when
 * `MONGOD_DOWNLOAD=1`; else the mongo-java-server stand-in, which has change streams but no
 * transactions and says so in its description. A server given by `MONGODB_URI` counts as real when
 * it is a real mongod, with or without transactions (the write side needs none).
 */
export async function startMongo(ctx: ServerContext): Promise<MongoHandle> {
  const given = ctx.config.given.mongodbUri;
  if (given) {
    const caps = await probeMongo(given);
    return envHandle(given, caps);
  }
  const mongod = ctx.config.mongodBin ?? which('mongod', ctx.config.pathEnv);
  if (ctx.config.mongodBin && !which(ctx.config.mongodBin, ctx.config.pathEnv)) {
    throw new HarnessError(
      'prerequisite_missing',
      `MONGOD_BIN=${ctx.config.mongodBin} is not executable`,
      {
        server: 'mongodb',
        retriable: false,
        advice: 'point MONGOD_BIN at a mongod binary, or unset it',
      },
    );
  }
  if (mongod) return startRealMongod(ctx, mongod);
  if (ctx.config.mongodDownload) return startDownloadedMongod();
  return startStandIn(ctx);
}

function withCaps(
  server: LocalServer,
  kind: MongoKind,
  capabilities: MongoCapabilities,
): MongoHandle {
  return Object.assign(server, { kind, capabilities });
}

function envHandle(uri: string, caps: MongoCapabilities): MongoHandle {
  return {
    name: 'mongodb',
    origin: 'env',
    kind: caps.real ? 'real' : 'stand-in',
    capabilities: caps,
    description: `MongoDB ${caps.version} from MONGODB_URI (${capsText(caps)})`,
    env: { MONGODB_URI: uri, CQRS_SYNC_MONGO_KIND: caps.real ? 'real' : 'stand-in' },
    pids: () => [],
    stop: () => Promise.resolve(),
  };
}

function capsText(c: MongoCapabilities): string {
  return [
    c.transactions ? 'transactions' : 'no transactions',
    c.changeStreams ? 'change streams' : 'no change streams',
  ].join(', ');
}

async function startRealMongod(ctx: ServerContext, bin: string): Promise<MongoHandle> {
  const port = await choosePort('mongodb', ctx.config.ports.mongodb);
  const base = path.join(ctx.config.runDir, 'mongodb');
  const dbPath = path.join(base, 'db');
  mkdirSync(dbPath, { recursive: true });
  const direct = `mongodb://127.0.0.1:${port}/?directConnection=true`;
  const uri = `mongodb://127.0.0.1:${port}/?replicaSet=${REPL_SET}`;
  const spec = () => ({
    server: 'mongodb',
    command: bin,
    args: [
      '--replSet',
      REPL_SET,
      '--port',
      String(port),
      '--bind_ip',
      '127.0.0.1',
      '--dbpath',
      dbPath,
      '--oplogSize',
      '256',
      '--wiredTigerCacheSizeGB',
      '0.5',
    ],
    logFile: path.join(base, 'mongod.log'),
    startTimeoutMs: ctx.config.startTimeoutMs,
    stopGraceMs: ctx.config.stopGraceMs,
    // Ready once it answers; the replica set is initiated (once) and awaited in describe below.
    ready: () => pingMongo(direct),
  });
  const server = await LocalServer.launch('mongodb', spec, ctx.config.stopGraceMs, async () => {
    await initiateReplicaSet(direct, port, ctx.config.startTimeoutMs);
    const caps = await probeMongo(uri);
    return {
      description: `MongoDB ${caps.version} (real mongod, replica set ${REPL_SET}, local 127.0.0.1:${port}; ${capsText(caps)})`,
      env: { MONGODB_URI: uri, CQRS_SYNC_MONGO_KIND: 'real' },
    };
  });
  const caps = await probeMongo(uri);
  return withCaps(server, 'real', caps);
}

export async function initiateReplicaSet(
  direct: string,
  port: number,
  timeoutMs: number,
): Promise<void> {
  const client = new MongoClient(direct, { serverSelectionTimeoutMS: 5000 });
  try {
    const admin = client.db('admin');
    try {
      await admin.command({
        replSetInitiate: { _id: REPL_SET, members: [{ _id: 0, host: `127.0.0.1:${port}` }] },
      });
    } catch (e) {
      // Already initiated (a restart on the same data) is fine.
      if (!/already initialized/i.test(String(e))) throw e;
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hello = await admin.command({ hello: 1 });
      if (hello.isWritablePrimary === true) return;
      if (Date.now() > deadline) {
        throw new HarnessError('start_timeout', 'replica set did not elect a primary', {
          server: 'mongodb',
          retriable: true,
        });
      }
      await sleep(200);
    }
  } finally {
    await client.close();
  }
}

async function startDownloadedMongod(): Promise<MongoHandle> {
  const { MongoMemoryReplSet } = await import('mongodb-memory-server-core');
  let repl;
  try {
    repl = await MongoMemoryReplSet.create({
      replSet: { count: 1, name: REPL_SET, storageEngine: 'wiredTiger' },
    });
  } catch (cause) {
    throw new HarnessError(
      'install_failed',
      'mongodb-memory-server could not download or start mongod',
      {
        server: 'mongodb',
        retriable: true,
        advice: 'needs the internet; unset MONGOD_DOWNLOAD to use the stand-in, or set MONGOD_BIN',
        cause,
      },
    );
  }
  const uri = repl.getUri();
  const caps = await probeMongo(uri);
  const pids = () =>
    repl.servers.flatMap((s) => {
      const pid = s.instanceInfo?.instance.mongodProcess?.pid;
      return pid === undefined ? [] : [pid];
    });
  let stopped: Promise<unknown> | undefined;
  return {
    name: 'mongodb',
    origin: 'local',
    kind: 'real',
    capabilities: caps,
    description: `MongoDB ${caps.version} (real mongod downloaded by mongodb-memory-server; ${capsText(caps)})`,
    env: { MONGODB_URI: uri, CQRS_SYNC_MONGO_KIND: 'real' },
    pids,
    stop: async () => {
      stopped ??= repl.stop();
      await stopped;
    },
  };
}

async function startStandIn(ctx: ServerContext): Promise<MongoHandle> {
  const version = await installJavaServer(ctx, 'mongodb', 'mongo-stand-in', [
    'java',
    'javac',
    'mvn',
  ]);
  const port = await choosePort('mongodb', ctx.config.ports.mongodb);
  const base = path.join(ctx.config.runDir, 'mongo-stand-in');
  const uri = `mongodb://127.0.0.1:${port}/?directConnection=true`;
  const spec = () => ({
    server: 'mongodb',
    command: 'bash',
    args: [path.join(scriptsDir('mongo-stand-in'), 'run.sh')],
    env: { PORT: String(port), DATA_DIR: base, CQRS_SYNC_CACHE: ctx.config.cacheDir },
    logFile: path.join(base, 'mongo-stand-in.log'),
    startTimeoutMs: ctx.config.startTimeoutMs,
    stopGraceMs: ctx.config.stopGraceMs,
    ready: () => pingMongo(uri),
  });
  const server = await LocalServer.launch('mongodb', spec, ctx.config.stopGraceMs, async () => {
    const caps = await probeMongo(uri);
    return {
      description: `mongo-java-server ${version} (stand-in, ${capsText(caps)}; local 127.0.0.1:${port})`,
      env: { MONGODB_URI: uri, CQRS_SYNC_MONGO_KIND: 'stand-in' },
    };
  });
  const handle = withCaps(server, 'stand-in', await probeMongo(uri));
  if (ctx.config.standInOplogKeepMs === 0) return handle;
  const trimmer = trimOplog(uri, ctx.config.standInOplogKeepMs);
  const stop = handle.stop.bind(handle);
  return Object.assign(handle, {
    stop: async () => {
      await trimmer.stop();
      await stop();
    },
  });
}

/**
 * Caps the stand-in's oplog as a real mongod's is: every 2 s, deletes entries older than `keepMs`
 * (`local.oplog.rs`; a delete there is not itself logged). Without it every change-stream
 * `getMore` scans a history that only grows (measured: a command's writes fell from ~130 to ~8/s
 * over `npm run chaos`). A resume token older than the window resumes at the oldest entry left:
 * the relay's scan, the source of truth, covers what the stream no longer shows.
 */
function trimOplog(uri: string, keepMs: number): { stop: () => Promise<void> } {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 2000 });
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(
      () =>
        client
          .db('local')
          .collection('oplog.rs')
          .deleteMany({
            ts: { $lt: new Timestamp({ t: Math.floor((Date.now() - keepMs) / 1000), i: 0 }) },
          })
          .catch(() => undefined), // the stand-in may be restarting (chaos): next time
    );
  }, 2000);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
      await client.close().catch(() => undefined);
    },
  };
}

export async function pingMongo(uri: string): Promise<boolean> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 1500, connectTimeoutMS: 1500 });
  try {
    await client.db('admin').command({ ping: 1 });
    return true;
  } finally {
    await client.close();
  }
}

/** Asks the deployment what it can do: a real transaction and a real change stream, on a scratch
 * collection that is dropped afterwards. */
export async function probeMongo(uri: string): Promise<MongoCapabilities> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    await client.connect();
    const db = client.db('cqrs_sync_probe');
    const info = await db.admin().command({ buildInfo: 1 });
    const coll = db.collection<{ _id: string }>(`probe_${process.pid}_${Date.now()}`);
    await coll.insertOne({ _id: 'created' });
    let transactions = false;
    const session = client.startSession();
    try {
      await session.withTransaction(async () => {
        await coll.insertOne({ _id: 'in-tx' }, { session });
      });
      transactions = (await coll.countDocuments({ _id: 'in-tx' })) === 1;
    } catch {
      transactions = false;
    } finally {
      await session.endSession();
    }
    let changeStreams = false;
    const stream = coll.watch([], { maxAwaitTimeMS: 200 });
    try {
      // Opening the cursor first, then writing, is what a tailing relay does.
      const next = stream.tryNext();
      await next;
      await coll.insertOne({ _id: 'after-watch' });
      const deadline = Date.now() + 5000;
      while (!changeStreams && Date.now() < deadline) {
        changeStreams = (await stream.tryNext()) !== null;
      }
    } catch {
      changeStreams = false;
    } finally {
      await stream.close();
    }
    await coll.drop().catch(() => undefined);
    return {
      version: typeof info.version === 'string' ? info.version : 'unknown',
      real: typeof info.gitVersion === 'string',
      transactions,
      changeStreams,
    };
  } finally {
    await client.close();
  }
}
