/**
 * `connectWriteSide` on the harness's MongoDB and schema registry: one call from the config to the
 * first command, and `close()` closes only the client it created.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { isPipelineError } from '../schemas/errors.js';
import { testServers, uniqueName } from '../test/support/servers.js';
import { connectWriteSide } from './connect.js';
import { Note, NoteType, WriteNote } from './testing-defined.js';

const servers = testServers();
let borrowed: MongoClient;

beforeAll(async () => {
  borrowed = new MongoClient(servers.mongodbUri);
  await borrowed.connect();
});
afterAll(async () => {
  await borrowed.close();
});

it('wires the write side from the config and runs a command into its database', async () => {
  const database = uniqueName('connect');
  const write = await connectWriteSide({
    config: { aggregates: [NoteType], topicPrefix: `${uniqueName('t')}.` },
    mongodbUri: servers.mongodbUri,
    schemaRegistryUrl: servers.schemaRegistryUrl,
    database,
  });
  const result = await write.handle(WriteNote, {
    commandId: 'c-1',
    noteId: 'n-1',
    text: 'hello',
    dueDay: null,
  });
  expect(result).toMatchObject({ applied: true, version: 1 });
  expect((await write.repository(Note).load('n-1')).state?.text).toBe('hello');
  const doc = await borrowed
    .db(database)
    .collection('note')
    .findOne({ _id: 'n-1' as never });
  expect(doc).toMatchObject({ version: 1, state: { text: 'hello' } });
  await write.close();
  // Its own client is closed: the next operation on it fails.
  await expect(write.client.db(database).command({ ping: 1 })).rejects.toThrow();
});

it('borrows a given client and leaves it open', async () => {
  const write = await connectWriteSide({
    config: { aggregates: [NoteType], topicPrefix: `${uniqueName('t')}.` },
    mongoClient: borrowed,
    schemaRegistryUrl: servers.schemaRegistryUrl,
    database: uniqueName('connect'),
  });
  await write.close();
  await expect(borrowed.db('admin').command({ ping: 1 })).resolves.toMatchObject({ ok: 1 });
});

it('says which setting is missing', async () => {
  const err = await connectWriteSide({
    config: { aggregates: [NoteType] },
    mongoClient: borrowed,
    database: 'x',
  }).catch((e: unknown) => e);
  expect(isPipelineError(err, 'config_invalid')).toBe(true);
  expect((err as Error).message).toMatch(/schemaRegistryUrl or registry/);
});
