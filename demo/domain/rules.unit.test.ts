/** The demo's domain rules (orders and customers), through its command handlers. */
import { beforeEach, describe, expect, it } from '@jest/globals';
import { buildCatalog } from '../../schemas/catalog.js';
import { EventCodec } from '../../schemas/codec.js';
import { isPipelineError } from '../../schemas/errors.js';
import { InMemoryWriteStore } from '../../write/memory-store.js';
import { InMemoryRegistry } from '../../write/testing.js';
import { demoCommands, type DemoCommands } from './commands.js';
import { demoAggregates } from './definitions.js';
import { rejection } from '../../test/support/rejection.js';

let store: InMemoryWriteStore;
let codec: EventCodec;
let cmd: DemoCommands;

function doc(aggregateType: string, aggregateId: string) {
  const d = store.documents.get(`${aggregateType}\u0000${aggregateId}`);
  if (!d) throw new Error(`no document ${aggregateType} ${aggregateId}`);
  return d;
}

beforeEach(async () => {
  store = new InMemoryWriteStore();
  codec = new EventCodec(buildCatalog(demoAggregates), new InMemoryRegistry());
  await codec.registerAll();
  cmd = demoCommands(store, codec);
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
