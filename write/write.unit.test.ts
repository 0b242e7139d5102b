import { beforeEach, describe, expect, it } from '@jest/globals';
import { buildCatalog } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import { demoCommands, type DemoCommands } from '../demo/domain/commands.js';
import { demoAggregates } from '../demo/domain/definitions.js';
import { aggregateLimits } from './limits.js';
import { InMemoryWriteStore } from './memory-store.js';
import { aggregateCollectionName } from './outbox.js';
import { InMemoryRegistry } from './testing.js';

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

let store: InMemoryWriteStore;
let codec: EventCodec;
let cmd: DemoCommands;

/** The aggregate's one document, as the store holds it. */
function doc(aggregateType: string, aggregateId: string) {
  const d = store.documents.get(`${aggregateType}\u0000${aggregateId}`);
  if (!d) throw new Error(`no document ${aggregateType} ${aggregateId}`);
  return d;
}

/** Every command id any aggregate document recorded. */
function recordedCommandIds(): string[] {
  return [...store.documents.values()].flatMap((d) => d.commands.map((c) => c.commandId));
}

beforeEach(async () => {
  store = new InMemoryWriteStore();
  codec = new EventCodec(buildCatalog(demoAggregates), new InMemoryRegistry());
  await codec.registerAll();
  cmd = demoCommands(store, codec);
});

describe('command handling', () => {
  it('saves state and one outbox entry per event, versions 1, 2, 3, payload { event, state }', async () => {
    await cmd.RegisterCustomer({ commandId: 'c1', customerId: 'u1', name: 'Ann', email: 'a@x.io' });
    await cmd.RenameCustomer({ commandId: 'c2', customerId: 'u1', name: 'Anna' });
    const r = await cmd.ChangeCustomerEmail({ commandId: 'c3', customerId: 'u1', email: 'b@x.io' });
    expect(r).toMatchObject({ applied: true, aggregateId: 'u1', version: 3 });
    expect(store.outbox.map((e) => [e.type, e.version, e.status, e.commandId])).toEqual([
      ['CustomerRegistered', 1, 'pending', 'c1'],
      ['CustomerRenamed', 2, 'pending', 'c2'],
      ['CustomerEmailChanged', 3, 'pending', 'c3'],
    ]);
    const last = store.outbox[2];
    expect(last?.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    const decoded = await codec.decode(last?.payload ?? Buffer.alloc(0), 'CustomerEmailChanged');
    expect(decoded.value).toEqual({
      event: { email: 'b@x.io' },
      state: { id: 'u1', name: 'Anna', email: 'b@x.io' },
    });
    expect(decoded.schemaId).toBe(last?.schemaId);
    // One document holds it all: state, version, the unrelayed entries and the command ids.
    expect(doc('Customer', 'u1')).toMatchObject({
      _id: 'u1',
      aggregateType: 'Customer',
      version: 3,
      state: { id: 'u1', name: 'Anna', email: 'b@x.io' },
      deleted: false,
      relayedVersion: 0,
      relayFence: 0,
    });
    expect(doc('Customer', 'u1').outbox.map((e) => e.version)).toEqual([1, 2, 3]);
    expect(doc('Customer', 'u1').commands.map((c) => [c.commandId, c.version])).toEqual([
      ['c1', 1],
      ['c2', 2],
      ['c3', 3],
    ]);
  });

  it('runs a repeated commandId once and returns the first outcome', async () => {
    const input = { commandId: 'same', customerId: 'u2', name: 'Bo', email: 'bo@x.io' };
    const first = await cmd.RegisterCustomer(input);
    const again = await cmd.RegisterCustomer(input);
    expect(first.applied).toBe(true);
    expect(again).toEqual({ ...first, applied: false, reason: 'duplicate' });
    expect(store.outbox).toHaveLength(1);
  });

  it('returns the first outcome when a concurrent repeat records the command first', async () => {
    await cmd.RegisterCustomer({ commandId: 'r1', customerId: 'u3', name: 'C', email: 'c@x.io' });
    store.beforeCommit = (c) => {
      doc('Customer', 'u3').commands.push({
        commandId: c.commandId ?? '',
        version: 2,
        eventIds: ['first'],
        at: new Date(),
      });
    };
    const r = await cmd.RenameCustomer({ commandId: 'r2', customerId: 'u3', name: 'D' });
    expect(r).toMatchObject({ applied: false, reason: 'duplicate', eventIds: ['first'] });
    expect(store.outbox).toHaveLength(1);
  });

  it('retries a concurrency conflict against the fresh state, then gives up with a retriable error', async () => {
    await cmd.CreateOrder({ commandId: 'o1', orderId: 'o', customerId: 'u' });
    // A competing writer saves version 2 between our load and our commit.
    store.beforeCommit = () => {
      doc('Order', 'o').version = 2;
    };
    const r = await cmd.AddOrderLine({
      commandId: 'o2',
      orderId: 'o',
      lineId: 'l1',
      sku: 'S',
      quantity: 2,
      unitPriceCents: 150,
    });
    expect(r).toMatchObject({ applied: true, version: 3 });

    const noRetry = demoCommands(store, codec, { maxConflictRetries: 0 });
    store.beforeCommit = () => {
      doc('Order', 'o').version = 9;
    };
    const e = await rejection(noRetry.PlaceOrder({ commandId: 'o3', orderId: 'o' }));
    expect(isPipelineError(e, 'concurrency_conflict') && e.retriable).toBe(true);
    expect(store.outbox).toHaveLength(2);
    expect(recordedCommandIds()).not.toContain('o3');
  });

  it('refuses invalid commands with command_invalid, naming the field', async () => {
    const e = await rejection(cmd.RegisterCustomer({ commandId: 'x', customerId: 'u' }));
    expect(isPipelineError(e, 'command_invalid')).toBe(true);
    expect((e as Error).message).toMatch(/name/);
  });

  it('refuses an aggregate id the sink could not keep apart, before anything is saved', async () => {
    for (const customerId of ['u ', 'u'.repeat(192), '']) {
      const e = await rejection(
        cmd.RegisterCustomer({
          commandId: `bad-${customerId.length}`,
          customerId,
          name: 'N',
          email: 'n@x.io',
        }),
      );
      expect(isPipelineError(e, 'command_invalid') && !e.retriable).toBe(true);
      // The empty one is caught by the command's own schema first.
      expect((e as Error).message).toMatch(/aggregate id .*(space|characters)|customerId/);
    }
    const fits = await cmd.RegisterCustomer({
      commandId: 'fits',
      customerId: '😀'.repeat(191),
      name: 'N',
      email: 'n@x.io',
    });
    expect(fits).toMatchObject({ applied: true });
    expect(recordedCommandIds()).not.toContain('bad-2');
  });

  it('returns no_events for a command that changes nothing', async () => {
    await cmd.RegisterCustomer({ commandId: 'n1', customerId: 'u9', name: 'N', email: 'n@x.io' });
    const r = await cmd.RenameCustomer({ commandId: 'n2', customerId: 'u9', name: 'N' });
    expect(r).toMatchObject({ applied: false, reason: 'no_events', version: 1, eventIds: [] });
  });
});

describe('demo domain rules', () => {
  const line = { lineId: 'l1', sku: 'SKU', quantity: 1, unitPriceCents: 250 };
  const rule = async (p: Promise<unknown>, code = 'domain_rule_violated'): Promise<string> => {
    const e = await rejection(p);
    expect(isPipelineError(e) && e.code).toBe(code);
    return (e as Error).message;
  };

  it('keeps orders consistent: lines, totals, status', async () => {
    await cmd.CreateOrder({ commandId: 'a', orderId: 'o1', customerId: 'u1' });
    await rule(cmd.PlaceOrder({ commandId: 'b', orderId: 'o1' }));
    await rule(cmd.AddOrderLine({ commandId: 'c', orderId: 'o1', ...line, quantity: 0 }));
    await cmd.AddOrderLine({ commandId: 'd', orderId: 'o1', ...line, quantity: 3 });
    await rule(cmd.AddOrderLine({ commandId: 'd2', orderId: 'o1', ...line }));
    await cmd.AddOrderLine({ commandId: 'e', orderId: 'o1', ...line, lineId: 'l2' });
    await cmd.RemoveOrderLine({ commandId: 'f', orderId: 'o1', lineId: 'l2' });
    await rule(cmd.RemoveOrderLine({ commandId: 'f2', orderId: 'o1', lineId: 'nope' }));
    await cmd.PlaceOrder({ commandId: 'g', orderId: 'o1' });
    expect(
      await rule(cmd.AddOrderLine({ commandId: 'h', orderId: 'o1', ...line, lineId: 'l3' })),
    ).toMatch(/placed/);
    await cmd.CancelOrder({ commandId: 'i', orderId: 'o1', reason: 'changed mind' });
    await rule(cmd.CancelOrder({ commandId: 'j', orderId: 'o1', reason: 'again' }));
    expect(
      await rule(cmd.AddOrderLine({ commandId: 'k', orderId: 'o1', ...line, lineId: 'l4' })),
    ).toMatch(/cancelled/);
    expect(doc('Order', 'o1').state).toEqual({
      id: 'o1',
      customerId: 'u1',
      status: 'cancelled',
      lines: [{ ...line, quantity: 3 }],
      totalCents: 750,
    });
    await rule(cmd.CreateOrder({ commandId: 'l', orderId: 'o1', customerId: 'u1' }));
    await cmd.DeleteOrder({ commandId: 'm', orderId: 'o1' });
    const deleted = store.outbox.at(-1);
    expect(deleted?.type).toBe('OrderDeleted');
    expect((await codec.decode(deleted?.payload ?? Buffer.alloc(0))).value.state).toBeNull();
    await rule(cmd.PlaceOrder({ commandId: 'n', orderId: 'o1' }), 'aggregate_not_found');
  });

  it('validates customers: email format, names, existence', async () => {
    await rule(
      cmd.RegisterCustomer({ commandId: 'a', customerId: 'u', name: 'A', email: 'not-an-email' }),
    );
    await rule(
      cmd.RegisterCustomer({ commandId: 'a2', customerId: 'u', name: ' ', email: 'a@b.io' }),
    );
    await rule(
      cmd.RenameCustomer({ commandId: 'b', customerId: 'u', name: 'B' }),
      'aggregate_not_found',
    );
    await cmd.RegisterCustomer({ commandId: 'c', customerId: 'u', name: 'A', email: 'a@b.io' });
    await rule(
      cmd.RegisterCustomer({ commandId: 'c2', customerId: 'u', name: 'A', email: 'a@b.io' }),
    );
    await rule(cmd.ChangeCustomerEmail({ commandId: 'd', customerId: 'u', email: 'bad' }));
    await rule(cmd.RenameCustomer({ commandId: 'd2', customerId: 'u', name: '  ' }));
    const same = await cmd.ChangeCustomerEmail({
      commandId: 'd3',
      customerId: 'u',
      email: 'a@b.io',
    });
    expect(same.applied).toBe(false);
    await cmd.DeleteCustomer({ commandId: 'e', customerId: 'u' });
    await rule(cmd.DeleteCustomer({ commandId: 'f', customerId: 'u' }), 'aggregate_not_found');
    await rule(
      cmd.RegisterCustomer({ commandId: 'g', customerId: 'u', name: 'A', email: 'a@b.io' }),
    );
  });
});

describe('aggregate limits', () => {
  it('recognises a repeat among the last commandIdsKept (3) commands and runs an older one again', async () => {
    store = new InMemoryWriteStore({ commandIdsKept: 3 });
    cmd = demoCommands(store, codec);
    await cmd.RegisterCustomer({ commandId: 'k0', customerId: 'k', name: 'N0', email: 'k@x.io' });
    for (let i = 1; i <= 3; i++) {
      await cmd.RenameCustomer({ commandId: `k${i}`, customerId: 'k', name: `N${i}` });
    }
    expect(doc('Customer', 'k').commands.map((c) => c.commandId)).toEqual(['k1', 'k2', 'k3']);
    expect(
      await cmd.RenameCustomer({ commandId: 'k1', customerId: 'k', name: 'N1' }),
    ).toMatchObject({ applied: false, reason: 'duplicate', version: 2 });
    // k0 fell out of the window: it runs again (and fails on its own domain rule: already registered).
    const e = await rejection(
      cmd.RegisterCustomer({ commandId: 'k0', customerId: 'k', name: 'N0', email: 'k@x.io' }),
    );
    expect(isPipelineError(e, 'domain_rule_violated')).toBe(true);
  });

  it('refuses with a retriable relay_behind past maxUnrelayedEntries, writes nothing, and accepts again once relayed', async () => {
    store = new InMemoryWriteStore({ maxUnrelayedEntries: 2 });
    cmd = demoCommands(store, codec);
    await cmd.RegisterCustomer({ commandId: 'b1', customerId: 'b', name: 'A', email: 'b@x.io' });
    await cmd.RenameCustomer({ commandId: 'b2', customerId: 'b', name: 'B' });
    const e = await rejection(cmd.RenameCustomer({ commandId: 'b3', customerId: 'b', name: 'C' }));
    expect(isPipelineError(e, 'relay_behind') && e.retriable).toBe(true);
    expect(e).toMatchObject({ context: { aggregateId: 'b', unrelayedEntries: 2 } });
    expect(doc('Customer', 'b')).toMatchObject({ version: 2, state: { name: 'B' } });
    expect(store.outbox).toHaveLength(2);
    store.relayAll();
    expect(doc('Customer', 'b')).toMatchObject({ outbox: [], relayedVersion: 2 });
    expect(await cmd.RenameCustomer({ commandId: 'b3', customerId: 'b', name: 'C' })).toMatchObject(
      { applied: true, version: 3 },
    );
  });

  it('refuses past maxUnrelayedBytes too', async () => {
    store = new InMemoryWriteStore({ maxUnrelayedBytes: 40 });
    cmd = demoCommands(store, codec);
    const e = await rejection(
      cmd.RegisterCustomer({
        commandId: 'y',
        customerId: 'y',
        name: 'Y'.repeat(50),
        email: 'y@x.io',
      }),
    );
    expect(isPipelineError(e, 'relay_behind')).toBe(true);
    expect(store.documents.size).toBe(0);
  });

  it('are checked at start-up: positive integers, bytes well below 16 MB', () => {
    expect(aggregateLimits()).toEqual({
      commandIdsKept: 100,
      maxUnrelayedEntries: 1_000,
      maxUnrelayedBytes: 4 * 1024 * 1024,
    });
    for (const bad of [
      { commandIdsKept: 0 },
      { maxUnrelayedEntries: 1.5 },
      { maxUnrelayedBytes: -1 },
    ]) {
      expect(() => aggregateLimits(bad)).toThrow(/must be a positive integer/);
    }
    expect(() => aggregateLimits({ maxUnrelayedBytes: 13 * 1024 * 1024 })).toThrow(/16 MB/);
  });
});

describe('helpers', () => {
  it('names aggregate collections after the aggregate type', () => {
    expect(aggregateCollectionName('OrderLine')).toBe('order-line');
  });
});
