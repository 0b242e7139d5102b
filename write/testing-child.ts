/**
 * A writer process for tests of several writers on the same aggregates:
 * `node --import tsx write/testing-child.ts <mongodb-uri> <database> <writer> <commands> <in-flight>
 * <id,id,…>`. Connects, prints `ready`, waits for a line on stdin (so that every
 * writer starts at once), then sends `<commands>` RenameProfile commands (`<writer>-<i>`, a new name
 * each) to aggregates chosen at random, `<in-flight>` at a time, and prints one JSON line: what
 * applied, how many conflicts the store raised (each one retried by the handler) and any error.
 */
import { once } from 'node:events';
import { MongoClient } from 'mongodb';
import { isPipelineError } from '../schemas/errors.js';
import { MongoWriteStore } from './mongo-store.js';
import type { Commit, WriteStore } from './ports.js';
import { profileCodec, profileCommands } from './testing.js';

export interface WriterReport {
  readonly applied: readonly {
    readonly commandId: string;
    readonly aggregateId: string;
    readonly version: number;
    readonly eventIds: readonly string[];
  }[];
  readonly conflicts: number;
  readonly errors: readonly string[];
}

const [uri = '', database = '', writer = 'w', count = '0', inFlight = '1', idList = ''] =
  process.argv.slice(2);
const ids = idList.split(',');
const client = new MongoClient(uri);
await client.connect();
const mongo = new MongoWriteStore({ client, database });
let conflicts = 0;
/** The store, counting the conflicts its commits raise. */
const store: WriteStore = {
  load: (type, id) => mongo.load(type, id),
  commit: async (commit: Commit) => {
    try {
      return await mongo.commit(commit);
    } catch (e) {
      if (isPipelineError(e, 'concurrency_conflict')) conflicts++;
      throw e;
    }
  },
};
const cmd = profileCommands(store, await profileCodec(), { maxConflictRetries: 10_000 });
await mongo.load('Profile', ids[0] ?? ''); // connected and indexed before the start
process.stdout.write('ready\n');
process.stdin.setEncoding('utf8');
await once(process.stdin, 'data');

const applied: WriterReport['applied'][number][] = [];
const errors: string[] = [];
let next = 0;
async function lane(): Promise<void> {
  while (next < Number(count)) {
    const i = next++;
    const profileId = ids[Math.floor(Math.random() * ids.length)] ?? '';
    const commandId = `${writer}-${i}`;
    try {
      const r = await cmd.RenameProfile({ commandId, profileId, name: commandId });
      if (r.applied) {
        applied.push({
          commandId,
          aggregateId: profileId,
          version: r.version,
          eventIds: r.eventIds,
        });
      } else errors.push(`${commandId}: not applied (${r.reason})`);
    } catch (e) {
      errors.push(`${commandId}: ${String(e)}`);
    }
  }
}
await Promise.all(Array.from({ length: Number(inFlight) }, lane));
const report: WriterReport = { applied, conflicts, errors };
process.stdout.write(`${JSON.stringify(report)}\n`);
await client.close();
process.stdin.destroy();
