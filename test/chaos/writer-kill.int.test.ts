/**
 * kill -9 of a writer process, 20 times in the middle of its stream of commands (issue 13): every
 * command it reported committed reaches MySQL exactly once, and every command in flight at a kill
 * either reached MySQL whole (its state and all its events) or exists nowhere. The verdict comes from
 * MongoDB and MySQL, never from the writer's log: the writer's lines only say which commands to ask
 * about. After each kill the next writer continues with the commands not finished, and half the time
 * sends the in-flight ones again (same command ids: a retry must not duplicate); the other half they
 * are abandoned. Real Kafka, registry and MariaDB; MongoDB as the run has it (the stand-in or mongod).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { testCatalog } from '../../relay/testing.js';
import { EventCodec } from '../../schemas/codec.js';
import { ConfluentRegistry } from '../../schemas/registry.js';
import type { CommandRecord } from '../../schemas/outbox-entry.js';
import {
  APPLIED_LOG_MIGRATIONS,
  createTestDatabase,
  type TestDatabase,
} from '../../sink/testing.js';
import { DEFAULT_AGGREGATE_LIMITS } from '../../write/limits.js';
import { testServers, uniqueName, waitFor } from '../support/servers.js';
import { SHOP_MIGRATIONS } from '../support/shop-read-model.js';
import { pipelineChildren, random, shopCommandStream, type Child } from './chaos.js';
import {
  checkEvents,
  compareReadModel,
  readAggregates,
  readApplied,
  recordVersions,
  sinkVersions,
  waitQuiet,
  type AggregateView,
} from './checks.js';
import { WriterProcess } from './writers.js';

const KILLS = 20;
// About 15 commands per aggregate: every aggregate keeps all its command records (fewer than
// `commandIdsKept`), so MongoDB alone says which command wrote each version.
const COMMANDS = 3000;
const AGGREGATES = 200;

const servers = testServers();
const run = uniqueName('wkill');
let mongo: MongoClient;
let db: TestDatabase;
let children: Child[] = [];
let writer: WriterProcess | undefined;

beforeAll(async () => {
  await new EventCodec(
    testCatalog(run),
    new ConfluentRegistry(servers.schemaRegistryUrl),
  ).registerAll();
  mongo = new MongoClient(servers.mongodbUri, { serverSelectionTimeoutMS: 30_000 });
  await mongo.connect();
  db = await createTestDatabase(servers.mysqlUrl, servers.mysqlSinkUrl, run, [
    SHOP_MIGRATIONS,
    APPLIED_LOG_MIGRATIONS,
  ]);
}, 120_000);

afterAll(async () => {
  await writer?.kill('SIGKILL');
  for (const c of children) await c.kill('SIGKILL');
  await db.drop().catch(() => undefined);
  await mongo.close();
});

it('keeps every command a killed writer reported, and each in-flight one whole or not at all', async () => {
  const rnd = random(13);
  const { relay, sink } = pipelineChildren(run, servers, db, {
    relay: {
      RELAY_BATCH_SIZE: '500',
      RELAY_SCAN_INTERVAL_MS: '1000',
      RELAY_RETRY_MAX_MS: '2000',
      RELAY_TOPIC_PARTITIONS: '3',
    },
    sink: { SINK_BATCH_SIZE: '200', SINK_RETRY_INITIAL_MS: '100', SINK_RETRY_MAX_MS: '2000' },
  });
  children = [relay, sink];
  relay.spawn();
  sink.spawn();
  const commands = shopCommandStream(rnd, COMMANDS, AGGREGATES);
  const w = (writer = new WriterProcess('writer', commands, {
    MONGODB_URI: servers.mongodbUri,
    SCHEMA_REGISTRY_URL: servers.schemaRegistryUrl,
    WRITER_DATABASE: run,
    WRITER_LANES: '8',
  }));
  w.start();

  // Each kill after a random number of commands returned by this process (the kills spread over the
  // commands), then a few random milliseconds more: anywhere in a command's load, execute or commit.
  let kills = 0;
  while (kills < KILLS) {
    const left = commands.length - w.settled;
    const after = 1 + Math.floor(Math.min(0.8 * left, (rnd() * 2 * left) / (KILLS - kills + 1)));
    await waitFor(
      'the writer to return commands',
      () => w.returnedSinceSpawn >= after || !w.alive,
      {
        timeoutMs: 120_000,
        intervalMs: 5,
      },
    );
    if (!w.alive) {
      throw new Error(
        `the writer exited before kill ${kills + 1} (${after} of ${left} left):\n${w.output()}`,
      );
    }
    await new Promise((r) => setTimeout(r, rnd() * 20));
    await w.kill('SIGKILL');
    kills++;
    w.restart(rnd() < 0.5);
  }
  await waitFor('the last writer to finish', () => w.complete || !w.alive, {
    timeoutMs: 240_000,
    intervalMs: 50,
  });
  await w.exited();
  expect({ complete: w.complete, output: w.output() }).toEqual({
    complete: true,
    output: w.output(),
  });

  const quiet = await waitQuiet(mongo, run, db, 180_000, () => {
    for (const c of children) if (c.exitedOnItsOwn) c.spawn();
  });
  expect(quiet).toMatchObject({ quiet: true, pending: 0, held: 0 });
  await relay.kill('SIGTERM');
  await sink.kill('SIGTERM');

  // MongoDB against MySQL: every version applied once, in order, with the event id MongoDB's
  // command record names; the sink's version of each aggregate is MongoDB's.
  const aggregates = await readAggregates(mongo, run);
  const applied = await readApplied(db);
  const events = checkEvents(aggregates, applied);
  expect(events).toMatchObject({
    lost: 0,
    duplicated: 0,
    reordered: 0,
    phantom: 0,
    idMismatches: 0,
    mismatches: [],
  });
  const sinkVersion = await sinkVersions(db);
  const versionProblems = aggregates
    .filter((a) => sinkVersion.get(`${a.type}/${a.id}`) !== a.version)
    .map(
      (a) =>
        `${a.type}/${a.id}: MongoDB v${a.version}, MySQL v${sinkVersion.get(`${a.type}/${a.id}`)}`,
    );
  expect(versionProblems).toEqual([]);
  const readModel = await compareReadModel(aggregates, db);
  expect(readModel.mismatches).toEqual([]);

  // Each aggregate's command records are all there and cover its versions 1..v exactly, once: so
  // every event in MongoDB and MySQL belongs to a recorded command, and a command not recorded left
  // nothing anywhere.
  const recorded = new Map<string, { aggregate: AggregateView; record: CommandRecord }[]>();
  const coverage: string[] = [];
  for (const a of aggregates) {
    expect(a.commands.length).toBeLessThan(DEFAULT_AGGREGATE_LIMITS.commandIdsKept);
    const versions = a.commands.flatMap((r) => recordVersions(r));
    const expected = Array.from({ length: a.version }, (_, i) => i + 1);
    if (JSON.stringify(versions) !== JSON.stringify(expected)) {
      coverage.push(`${a.type}/${a.id} v${a.version}: records hold versions ${versions.join(',')}`);
    }
    for (const record of a.commands) {
      recorded.set(record.commandId, [
        ...(recorded.get(record.commandId) ?? []),
        { aggregate: a, record },
      ]);
    }
  }
  expect(coverage).toEqual([]);
  const twice = [...recorded].filter(([, r]) => r.length > 1).map(([id]) => id);
  expect(twice).toEqual([]);
  const appliedTimes = new Map<string, number>();
  for (const row of applied)
    appliedTimes.set(row.event_id, (appliedTimes.get(row.event_id) ?? 0) + 1);
  const reachedOnce = (ids: readonly string[]): boolean =>
    ids.every((id) => appliedTimes.get(id) === 1);

  // Every command the writer reported: recorded with the version and event ids it returned, and
  // each of those events in MySQL once. A refused one is recorded nowhere.
  const problems: string[] = [];
  for (const [id, out] of w.outcomes) {
    const r = recorded.get(id)?.[0]?.record;
    if (out.kind === 'no_events') {
      if (r) problems.push(`${id} returned no_events but is recorded at v${r.version}`);
      continue;
    }
    if (!r) problems.push(`${id} returned ${out.kind} v${out.version} but is recorded nowhere`);
    else if (r.version !== out.version || r.eventIds.join() !== out.eventIds.join())
      problems.push(`${id} returned v${out.version}, recorded v${r.version}`);
    else if (!reachedOnce(out.eventIds)) problems.push(`${id}: its events are not in MySQL once`);
  }
  for (const id of w.refused.keys()) {
    if (recorded.has(id)) problems.push(`${id} was refused but is recorded`);
  }
  // In flight at a kill and abandoned: whole (recorded, every event in MySQL once, the sink at or
  // past its version) or nothing (no record; the coverage above leaves no event for it).
  let whole = 0;
  for (const id of w.abandoned) {
    const hit = recorded.get(id)?.[0];
    if (!hit) continue;
    whole++;
    const { aggregate, record } = hit;
    if (!reachedOnce(record.eventIds)) problems.push(`in-flight ${id}: events not in MySQL once`);
    if ((sinkVersion.get(`${aggregate.type}/${aggregate.id}`) ?? 0) < record.version)
      problems.push(`in-flight ${id}: MySQL's ${aggregate.id} is behind v${record.version}`);
  }
  expect(problems).toEqual([]);

  const inFlight = w.inFlightAtKills.reduce((a, b) => a + b, 0);
  const resentDuplicates = [...w.resent].filter((id) => w.outcomes.get(id)?.kind === 'duplicate');
  process.stdout.write(
    `\nwriter-kill: kills=${kills} spawns=${w.spawns} commands=${commands.length} ok=${w.outcomes.size} refused=${w.refused.size} in-flight=${inFlight} (sent again=${w.resent.size}, of them already committed=${resentDuplicates.length}; abandoned=${w.abandoned.size}, of them committed whole=${whole}, absent=${w.abandoned.size - whole}) events=${events.events} mongodb=${servers.mongoKind}\n`,
  );
  expect(kills).toBe(KILLS);
  expect(inFlight).toBeGreaterThan(0);
}, 900_000);
