/**
 * Two writer processes hammering the same few aggregates on a real server (the stand-in, or a real
 * mongod when given): the conditional single-document write is the only thing between them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import type { AggregateDocument } from '../schemas/outbox-entry.js';
import { testServers, uniqueName } from '../test/support/servers.js';
import { MongoWriteStore } from './mongo-store.js';
import type { WriterReport } from './testing-child.js';
import { profileCodec, profileCommands } from './testing.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const servers = testServers();
let client: MongoClient;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  client = new MongoClient(servers.mongodbUri);
  await client.connect();
});
afterEach(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  children.clear();
});
afterAll(async () => {
  await client.close();
});

interface Writer {
  readonly ready: Promise<void>;
  go(): void;
  readonly report: Promise<WriterReport>;
}

function startWriter(
  database: string,
  writer: string,
  commands: number,
  inFlight: number,
  ids: readonly string[],
): Writer {
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(here, 'testing-child.ts'),
      servers.mongodbUri,
      database,
      writer,
      String(commands),
      String(inFlight),
      ids.join(','),
    ],
    {
      cwd: root,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  children.add(proc);
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  const seen: string[] = [];
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  lines.on('line', (l) => {
    seen.push(l);
    if (l === 'ready') onReady();
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', r));
  const report = exited.then((code) => {
    const last = seen.at(-1) ?? '';
    if (code !== 0 || !last.startsWith('{')) {
      throw new Error(`writer ${writer} exited ${String(code)}: ${seen.join('\n')}\n${stderr}`);
    }
    return JSON.parse(last) as WriterReport;
  });
  return {
    ready: Promise.race([ready, report.then(() => undefined)]),
    go: () => proc.stdin.write('go\n'),
    report,
  };
}

it('two writer processes on the same three aggregates: versions 1..n contiguous, no lost update, conflicts retried', async () => {
  const database = uniqueName('writers');
  const ids = ['a', 'b', 'c'];
  const codec = await profileCodec();
  const store = new MongoWriteStore({ client, database });
  const cmd = profileCommands(store, codec);
  for (const id of ids) {
    await cmd.CreateProfile({
      commandId: `create-${id}`,
      profileId: id,
      name: id,
      email: 'x@x.io',
    });
  }

  const perWriter = 150;
  const writers = ['w1', 'w2'].map((w) => startWriter(database, w, perWriter, 4, ids));
  await Promise.all(writers.map((w) => w.ready));
  for (const w of writers) w.go();
  const reports = await Promise.all(writers.map((w) => w.report));

  for (const r of reports) expect(r.errors).toEqual([]);
  const applied = reports.flatMap((r) => r.applied);
  expect(applied).toHaveLength(2 * perWriter);
  // Hammering three aggregates with eight commands in flight cannot go without a conflict.
  expect(reports.reduce((n, r) => n + r.conflicts, 0)).toBeGreaterThan(0);

  const docs = await client
    .db(database)
    .collection<AggregateDocument>('profile')
    .find({})
    .sort({ _id: 1 })
    .toArray();
  expect(docs.map((d) => d._id)).toEqual(ids);
  for (const doc of docs) {
    const mine = applied.filter((a) => a.aggregateId === doc._id);
    // Nothing relayed: the outbox still holds every event, 1..n without a gap or a repeat.
    expect(doc.version).toBe(1 + mine.length);
    expect(doc.outbox.map((e) => e.version)).toEqual(
      Array.from({ length: doc.version }, (_, i) => i + 1),
    );
    // Every applied command's event is there, at the version it was told, and nothing else is.
    const byEventId = new Map(doc.outbox.map((e) => [e.eventId, e]));
    for (const a of mine) {
      expect(a.eventIds).toHaveLength(1);
      expect(byEventId.get(a.eventIds[0] ?? '')).toMatchObject({
        commandId: a.commandId,
        version: a.version,
      });
    }
    expect(new Set(doc.outbox.slice(1).map((e) => e.commandId))).toEqual(
      new Set(mine.map((a) => a.commandId)),
    );
    // The state is the last applied command's.
    const last = mine.reduce((x, a) => (a.version > x.version ? a : x));
    expect(doc.state).toMatchObject({ name: last.commandId });
  }
}, 180_000);
