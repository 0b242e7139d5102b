/** The demo's `UpdateCustomer`: a new name and/or email as one command, saved whole or not at all. */
import { beforeEach, expect, it } from '@jest/globals';
import { buildCatalog } from '../../schemas/catalog.js';
import { EventCodec } from '../../schemas/codec.js';
import { isPipelineError } from '../../schemas/errors.js';
import { InMemoryWriteStore } from '../../write/memory-store.js';
import { InMemoryRegistry } from '../../write/testing.js';
import { demoCommands, type DemoCommands } from './commands.js';
import { demoAggregates } from './definitions.js';
import { rejection } from '../../test/support/rejection.js';

let store: InMemoryWriteStore;
let cmd: DemoCommands;

beforeEach(async () => {
  store = new InMemoryWriteStore();
  const codec = new EventCodec(buildCatalog(demoAggregates), new InMemoryRegistry());
  await codec.registerAll();
  cmd = demoCommands(store, codec);
  await cmd.RegisterCustomer({ commandId: 'r', customerId: 'u', name: 'Ann', email: 'a@x.io' });
});

it('saves a new name and email as both events in one commit', async () => {
  const r = await cmd.UpdateCustomer({
    commandId: 'u1',
    customerId: 'u',
    name: 'Anna',
    email: 'anna@x.io',
  });
  expect(r).toMatchObject({ applied: true, version: 3 });
  expect(r.eventIds).toHaveLength(2);
  expect(store.outbox.map((e) => [e.type, e.version, e.commandId])).toEqual([
    ['CustomerRegistered', 1, 'r'],
    ['CustomerRenamed', 2, 'u1'],
    ['CustomerEmailChanged', 3, 'u1'],
  ]);
  expect(store.documents.get('Customer\u0000u')).toMatchObject({
    version: 3,
    state: { name: 'Anna', email: 'anna@x.io' },
  });
});

it('raises only what changed, and nothing for the current values', async () => {
  const email = await cmd.UpdateCustomer({ commandId: 'u2', customerId: 'u', email: 'b@x.io' });
  expect(email).toMatchObject({ applied: true, version: 2 });
  const same = await cmd.UpdateCustomer({
    commandId: 'u3',
    customerId: 'u',
    name: 'Ann',
    email: 'b@x.io',
  });
  expect(same).toMatchObject({ applied: false, reason: 'no_events', version: 2 });
  expect(store.outbox.map((e) => e.type)).toEqual(['CustomerRegistered', 'CustomerEmailChanged']);
});

it('saves nothing when one of the two is refused (a valid name, a bad email)', async () => {
  const e = await rejection(
    cmd.UpdateCustomer({ commandId: 'u4', customerId: 'u', name: 'Anna', email: 'not-an-email' }),
  );
  expect(isPipelineError(e, 'domain_rule_violated')).toBe(true);
  expect(store.outbox).toHaveLength(1);
  expect(store.documents.get('Customer\u0000u')).toMatchObject({
    version: 1,
    state: { name: 'Ann' },
  });
});

it('refuses a change of nothing, and a customer that does not exist', async () => {
  expect(
    isPipelineError(
      await rejection(cmd.UpdateCustomer({ commandId: 'u5', customerId: 'u' })),
      'domain_rule_violated',
    ),
  ).toBe(true);
  expect(
    isPipelineError(
      await rejection(cmd.UpdateCustomer({ commandId: 'u6', customerId: 'nobody', name: 'X' })),
      'aggregate_not_found',
    ),
  ).toBe(true);
});
