/**
 * The web app's writer with the version the client saw (`expectedVersion`): a conflict found at
 * load or at commit is the same answer, naming the client's version, with nothing saved.
 */
import { beforeEach, expect, it } from '@jest/globals';
import { buildCatalog } from '../../schemas/catalog.js';
import { EventCodec } from '../../schemas/codec.js';
import { isPipelineError } from '../../schemas/errors.js';
import { InMemoryWriteStore } from '../../write/memory-store.js';
import { InMemoryRegistry } from '../../write/testing.js';
import { demoAggregates } from '../domain/definitions.js';
import { demoWriter, type DemoWriter } from './commands.js';
import { rejection } from '../../test/support/rejection.js';

let store: InMemoryWriteStore;
let writer: DemoWriter;

beforeEach(async () => {
  store = new InMemoryWriteStore();
  const codec = new EventCodec(buildCatalog(demoAggregates), new InMemoryRegistry());
  await codec.registerAll();
  writer = demoWriter(store, codec);
  await writer.run('RegisterCustomer', { customerId: 'u', name: 'Ann', email: 'ann@x.io' });
});

it('a change committed between load and commit is a conflict naming the version the client saw', async () => {
  // A competing writer saves version 2 after our load passed the check, before our commit.
  store.beforeCommit = () => {
    const s = store.documents.get('Customer\u0000u');
    if (s) store.documents.set('Customer\u0000u', { ...s, version: 2 });
  };
  const e = await rejection(
    writer.run('UpdateCustomer', { customerId: 'u', name: 'Bo', email: 'bo@x.io' }, 1),
  );
  expect(isPipelineError(e, 'concurrency_conflict')).toBe(true);
  expect((e as Error).message).toContain('you saw version 1');
  expect((e as Error).message).toContain('nothing was saved');
  expect(store.outbox.map((o) => o.type)).toEqual(['CustomerRegistered']);
  // The registration's command record alone.
  expect(store.documents.get('Customer\u0000u')?.commands.map((c) => c.version)).toEqual([1]);
});

it('a stale version found at load is the same conflict', async () => {
  const e = await rejection(writer.run('UpdateCustomer', { customerId: 'u', name: 'Bo' }, 0));
  expect(isPipelineError(e, 'concurrency_conflict') && !e.retriable).toBe(true);
  expect((e as Error).message).toContain('is at version 1');
  expect((e as Error).message).toContain('you saw version 0');
  expect(store.outbox).toHaveLength(1);
});
