/**
 * `npm run bench:write [-- --commands 20000 --aggregates 2000 --concurrency 16 --rounds 10]`: the
 * write side against the raw driver operations one command needs, on the same MongoDB (the stand-in,
 * or a real one from MONGODB_URI / MONGOD_BIN), at the same concurrency, in the same run.
 *
 * - Commands: `RenameCustomer` (the test shop's, test/support/shop.ts) through `commandHandler` over customers registered first
 *   (the registrations are timed too, and printed, but are not in the ratio): load (`findOne` by
 *   `_id`), execute, Avro-encode, one conditional `updateOne` that sets state and version and
 *   `$push`es the outbox entry and the command record.
 * - Raw: per command, a `findOne({_id})` and one `updateOne({_id, version}, {$set, $push})` of the
 *   same shape and size (the entry and command record a command writes, a payload of the same
 *   length), on a collection of its own with the same indexes and the same number of documents,
 *   which grow as the command side's do (no relay runs, so each outbox keeps every entry).
 *
 * Both warm up first, then run in `rounds` interleaved rounds (commands first in odd rounds, raw
 * first in even ones); the headline is the sum of those rounds. Aggregates are taken round-robin: at
 * `concurrency` below `aggregates`, no two operations in flight touch the same document, so neither
 * side has conflicts to retry (counted). CPU per operation of this process and of the server (from
 * /proc) is printed too: on a machine shared with other work it is steadier than the rates. Last line: `bench-write: cmd_per_s=<n> raw_per_s=<n> ratio=<cmd/raw>`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MongoClient, type Collection } from 'mongodb';
import { loadHarnessConfig } from '../infra/local/config.js';
import { startStack } from '../infra/local/stack.js';
import { buildCatalog } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import type { AggregateDocument, CommandRecord, OutboxEntry } from '../schemas/outbox-entry.js';
import { ensureWriteIndexes, mongoKind } from '../write/mongo-server.js';
import { MongoWriteStore } from '../write/mongo-store.js';
import type { WriteStore } from '../write/ports.js';
import { InMemoryRegistry } from '../write/testing.js';
import { shopAggregates, shopCommands } from '../test/support/shop.js';

const say = (line: string): void => void process.stdout.write(`${line}\n`);

const { values } = parseArgs({
  options: {
    commands: { type: 'string', default: '20000' },
    aggregates: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2000' },
  },
});
const num = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
};
const COMMANDS = num('commands');
const AGGREGATES = num('aggregates');
const CONCURRENCY = num('concurrency');
const ROUNDS = num('rounds');
const WARMUP = num('warmup');
const COMMAND_IDS_KEPT = 100; // the store's default, which the raw `$slice` mirrors

/** Runs `count` operations, `CONCURRENCY` at a time; returns the milliseconds taken. */
async function timed(count: number, op: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await op(next++);
    }),
  );
  return performance.now() - start;
}

const perSecond = (count: number, ms: number): number => Math.round(count / (ms / 1000));

/** CPU milliseconds a process has used, from /proc (Linux); NaN elsewhere. */
function serverCpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** Wall time, and CPU time of this process and of the server, of one timed batch. */
interface Cost {
  wallMs: number;
  nodeCpuMs: number;
  serverCpuMs: number;
  count: number;
}
const noCost = (): Cost => ({ wallMs: 0, nodeCpuMs: 0, serverCpuMs: 0, count: 0 });
const add = (a: Cost, b: Cost): void => {
  a.wallMs += b.wallMs;
  a.nodeCpuMs += b.nodeCpuMs;
  a.serverCpuMs += b.serverCpuMs;
  a.count += b.count;
};
/** CPU microseconds per operation, this process / the server: load-independent, unlike wall time. */
const cpuPerOp = (c: Cost): string =>
  `cpu/op node ${Math.round((c.nodeCpuMs * 1000) / c.count)} µs, server ${Math.round((c.serverCpuMs * 1000) / c.count)} µs`;

const stack = await startStack({ only: ['mongodb'], config: loadHarnessConfig(), log: say });
const client = new MongoClient(stack.env.MONGODB_URI ?? '');
try {
  for (const line of stack.lines()) say(line);
  await client.connect();
  const run = `benchwrite${Date.now().toString(36)}`;
  const db = client.db(run);
  const kind = await mongoKind(db);
  say(
    kind === 'stand-in'
      ? "NOTE: MongoDB is the mongo-java-server stand-in: the figures are the stand-in's, not MongoDB's."
      : 'MongoDB: a real server (buildInfo has a gitVersion).',
  );
  say(
    `commands: RenameCustomer over ${AGGREGATES} registered customers, ${COMMANDS} timed (+${WARMUP} warm-up), ${CONCURRENCY} in flight, ${ROUNDS} interleaved rounds`,
  );

  const codec = new EventCodec(buildCatalog(shopAggregates), new InMemoryRegistry());
  await codec.registerAll();
  const store = new MongoWriteStore({ client, database: run });
  await store.init(['Customer']);
  let cmdConflicts = 0;
  /** The store, counting the conflicts its commits raise (the handler retries them). */
  const counted: WriteStore = {
    load: (type, id) => store.load(type, id),
    commit: (commit) =>
      store.commit(commit).catch((e: unknown) => {
        if (isPipelineError(e, 'concurrency_conflict')) cmdConflicts++;
        throw e;
      }),
  };
  const cmd = shopCommands(counted, codec);
  const customers = db.collection<AggregateDocument>('customer');
  const raw = db.collection<AggregateDocument>('raw');
  await ensureWriteIndexes(raw as unknown as Collection, kind);
  const ids = Array.from({ length: AGGREGATES }, (_, i) => `c-${String(i).padStart(6, '0')}`);

  const serverPid = stack.get('mongodb')?.pids()[0];
  const measure = async (count: number, op: (i: number) => Promise<void>): Promise<Cost> => {
    const cpu = process.cpuUsage();
    const server = serverCpuMs(serverPid);
    const wallMs = await timed(count, op);
    const used = process.cpuUsage(cpu);
    return {
      wallMs,
      nodeCpuMs: (used.user + used.system) / 1000,
      serverCpuMs: serverCpuMs(serverPid) - server,
      count,
    };
  };
  /**
   * `total` of each, in `rounds` rounds, commands first in odd rounds and raw first in even ones (a
   * drift of the machine's speed then costs both alike); `op(i)` gets indexes 0..total-1.
   */
  const interleaved = async (
    what: string,
    total: number,
    rounds: number,
    cmdOp: (i: number) => Promise<void>,
    rawOp: (i: number) => Promise<void>,
  ): Promise<{ cmd: Cost; raw: Cost }> => {
    const perRound = Math.ceil(total / rounds);
    const cmd = noCost();
    const raw = noCost();
    for (let round = 0; round * perRound < total; round++) {
      const from = round * perRound;
      const count = Math.min(perRound, total - from);
      const cmdFirst = round % 2 === 0;
      const runCmd = () => measure(count, (i) => cmdOp(from + i));
      const runRaw = () => measure(count, (i) => rawOp(from + i));
      const c = cmdFirst ? await runCmd() : undefined;
      const r = await runRaw();
      const c2 = c ?? (await runCmd());
      add(cmd, c2);
      add(raw, r);
      say(
        `${what} round ${round + 1} (${cmdFirst ? 'cmd' : 'raw'} first): cmd ${perSecond(count, c2.wallMs)}/s, raw ${perSecond(count, r.wallMs)}/s`,
      );
    }
    return { cmd, raw };
  };

  // Registrations: through the handler, and raw (a findOne that misses, one insertOne). The first
  // customer's document is the raw side's template, so every field and size matches.
  await cmd.RegisterCustomer({
    commandId: 'reg-0',
    customerId: ids[0],
    name: 'name-0',
    email: 'c0@example.com',
  });
  const template = await customers.findOne({ _id: ids[0] ?? '' }, { promoteBuffers: true });
  if (!template) throw new Error('no customer document');
  const entryOf = (doc: AggregateDocument): OutboxEntry =>
    doc.outbox[doc.outbox.length - 1] as OutboxEntry;
  const rawRegister = async (i: number): Promise<void> => {
    const id = ids[i] ?? '';
    await raw.findOne({ _id: id }, { promoteBuffers: true });
    await raw.insertOne({
      ...template,
      _id: id,
      state: { id, name: `name-${i}`, email: `c${i}@example.com` },
      outbox: [{ ...entryOf(template), eventId: `raw-reg-${i}`.padEnd(36, '-'), aggregateId: id }],
      commands: [{ ...(template.commands[0] as CommandRecord), commandId: `reg-${i}` }],
      updatedAt: new Date(),
    });
  };
  await rawRegister(0);
  const registered = await interleaved(
    'register',
    AGGREGATES - 1,
    4,
    async (i) => {
      const r = await cmd.RegisterCustomer({
        commandId: `reg-${i + 1}`,
        customerId: ids[i + 1],
        name: `name-${i + 1}`,
        email: `c${i + 1}@example.com`,
      });
      if (!r.applied) throw new Error(`registration ${i + 1} did not apply`);
    },
    (i) => rawRegister(i + 1),
  );
  say(
    `register (cold, not in the ratio): cmd ${perSecond(registered.cmd.count, registered.cmd.wallMs)}/s, raw findOne+insertOne ${perSecond(registered.raw.count, registered.raw.wallMs)}/s`,
  );

  let rawConflicts = 0;
  /** An id as long as the uuid the handler gives an event. */
  const rawEventId = (tag: string, i: number): string => `raw-${tag}-${i}`.padEnd(36, '-');

  // One rename's entry and command record, as the handler writes them (the payload's length too).
  const probe = await cmd.RenameCustomer({
    commandId: 'probe',
    customerId: ids[0],
    name: 'name-probe',
  });
  const probed = await customers.findOne({ _id: ids[0] ?? '' }, { promoteBuffers: true });
  if (!probe.applied || !probed) throw new Error('the probe rename did not apply');
  const renameEntry = entryOf(probed);
  const renameRecord = probed.commands[probed.commands.length - 1] as CommandRecord;
  // The raw side gets the same extra write on the same document.
  await rawRename(0, 'probe');

  async function rawRename(i: number, tag: string): Promise<void> {
    const id = ids[i % AGGREGATES] ?? '';
    const name = `name-${tag}-${i}`;
    for (;;) {
      const doc = await raw.findOne({ _id: id }, { promoteBuffers: true });
      if (!doc) throw new Error(`no raw document ${id}`);
      const version = doc.version + 1;
      const now = new Date();
      const state = { ...doc.state, name };
      const res = await raw.updateOne(
        { _id: id, version: doc.version },
        {
          $set: { version, state, deleted: false, updatedAt: now },
          $push: {
            outbox: {
              $each: [
                {
                  ...renameEntry,
                  eventId: rawEventId(tag, i),
                  aggregateId: id,
                  version,
                  occurredAt: now,
                  commandId: `${tag}-${i}`,
                },
              ],
            },
            commands: {
              $each: [
                {
                  ...renameRecord,
                  commandId: `${tag}-${i}`,
                  version,
                  eventIds: [rawEventId(tag, i)],
                  at: now,
                },
              ],
              $slice: -COMMAND_IDS_KEPT,
            },
          },
        },
      );
      if (res.matchedCount === 1) return;
      rawConflicts++;
    }
  }

  let cmdNotApplied = 0;
  const cmdRename = async (i: number, tag: string): Promise<void> => {
    const r = await cmd.RenameCustomer({
      commandId: `${tag}-${i}`,
      customerId: ids[i % AGGREGATES],
      name: `name-${tag}-${i}`,
    });
    if (!r.applied) cmdNotApplied++;
  };

  await timed(WARMUP, (i) => cmdRename(i, 'warm'));
  await timed(WARMUP, (i) => rawRename(i, 'warm'));

  const { cmd: cmdCost, raw: rawCost } = await interleaved(
    'rename',
    COMMANDS,
    ROUNDS,
    (i) => cmdRename(i, 'timed'),
    (i) => rawRename(i, 'timed'),
  );
  say(`cmd: ${cmdCost.count} in ${Math.round(cmdCost.wallMs)} ms, ${cpuPerOp(cmdCost)}`);
  say(`raw: ${rawCost.count} in ${Math.round(rawCost.wallMs)} ms, ${cpuPerOp(rawCost)}`);

  const sample = await customers.findOne({ _id: ids[1] ?? '' });
  const rawSample = await raw.findOne({ _id: ids[1] ?? '' });
  say(
    `documents at the end: ${sample?.outbox.length ?? 0} outbox entries, ${sample?.commands.length ?? 0} command records (raw: ${rawSample?.outbox.length ?? 0}, ${rawSample?.commands.length ?? 0}); conflicts retried: cmd ${cmdConflicts}, raw ${rawConflicts}; commands not applied: ${cmdNotApplied}`,
  );
  const cmdPerS = perSecond(cmdCost.count, cmdCost.wallMs);
  const rawPerS = perSecond(rawCost.count, rawCost.wallMs);
  say(
    `bench-write: cmd_per_s=${cmdPerS} raw_per_s=${rawPerS} ratio=${(cmdPerS / rawPerS).toFixed(2)}`,
  );
} finally {
  await client.close();
  await stack.stop();
}
