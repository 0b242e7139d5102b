/**
 * A writer as its own process, for the kill -9 tests: `node --import tsx test/chaos/writer-child.ts`
 * reads commands from stdin, one JSON `{"name": "RenameCustomer", "input": {...}}` a line, runs them
 * through the shop's command handlers (test/support/shop.ts) on a `MongoWriteStore` and reports on stdout, one line each:
 *
 *     ready                                    connected, schemas registered: reading commands
 *     sent <commandId>                         just before the handler is called
 *     ok <commandId> <version> <eventIds|-> <applied|duplicate|no_events>   after it returned
 *     refused <commandId> <code>               a final refusal (domain rule, invalid input, or a
 *                                              retriable error that outlasted the retries)
 *     done                                     stdin ended and every command has returned
 *
 * Commands of one aggregate run in the order read, one lane per aggregate (hash of its id), lanes in
 * parallel. stdout is a pipe, and a pipe write is synchronous in Node on Linux: a `sent` line is in
 * the pipe before the command's first MongoDB operation, an `ok` line after its commit, so a kill -9
 * leaves exactly the commands in flight with `sent` and no outcome.
 *
 * Environment: `MONGODB_URI`, `SCHEMA_REGISTRY_URL`, `WRITER_DATABASE` (the write model's database,
 * also the topic prefix of the catalog, as `testCatalog(WRITER_DATABASE)`), `WRITER_LANES` (8).
 */
import { createInterface } from 'node:readline';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { testCatalog } from '../../relay/testing.js';
import { EventCodec } from '../../schemas/codec.js';
import { ConfluentRegistry } from '../../schemas/registry.js';
import { MongoWriteStore } from '../../write/mongo-store.js';
import { shopCommands, type ShopCommandName } from '../support/shop.js';
import { aggregateIdOf, laneHash, type WriterCommand } from './writers.js';

const need = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const database = need('WRITER_DATABASE');
const lanes = Math.max(1, Number(process.env.WRITER_LANES ?? 8));
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const client = new MongoClient(need('MONGODB_URI'), { serverSelectionTimeoutMS: 30_000 });
await client.connect();
const codec = new EventCodec(
  testCatalog(database),
  new ConfluentRegistry(need('SCHEMA_REGISTRY_URL')),
);
await codec.registerAll();
const store = new MongoWriteStore({ client, database, logger: pino({ level: 'error' }) });
await store.init(['Customer', 'Order']);
const commands = shopCommands(store, codec);

const errorCode = (e: unknown): string => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'error';
};

async function run(c: WriterCommand): Promise<void> {
  const id = c.input.commandId;
  const handler = commands[c.name as ShopCommandName] as
    ((input: unknown) => ReturnType<(typeof commands)['RenameCustomer']>) | undefined;
  if (!handler) {
    say(`refused ${id} unknown_command`);
    return;
  }
  say(`sent ${id}`);
  // Retriable errors (MongoDB restarting, the relay behind) are waited out: about three minutes.
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await handler(c.input);
      const kind = r.applied ? 'applied' : r.reason;
      say(`ok ${id} ${r.version} ${r.eventIds.length > 0 ? r.eventIds.join(',') : '-'} ${kind}`);
      return;
    } catch (e) {
      if ((e as { retriable?: unknown }).retriable === true && attempt < 100) {
        await sleep(Math.min(2000, 100 * attempt));
        continue;
      }
      say(`refused ${id} ${errorCode(e)}`);
      return;
    }
  }
}

const queues = Array.from({ length: lanes }, () => Promise.resolve());
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
say('ready');
for await (const line of lines) {
  if (line.trim() === '') continue;
  const c = JSON.parse(line) as WriterCommand;
  const lane = laneHash(aggregateIdOf(c)) % lanes;
  queues[lane] = (queues[lane] ?? Promise.resolve()).then(() => run(c));
}
await Promise.all(queues);
say('done');
await client.close();
