/**
 * The library tests' own domain (library tests never load demo/ code): customers and orders with
 * lines, declared from definitions, and the commands the relay's and sink's tests run.
 *
 * The benchmarks and the chaos runs drive it too (through the relay's `testCatalog` and the sink's
 * `testProjections`). The contract (aggregate types, event names, fields) is the demo's shape, so
 * the figures compare with a user's workload of that shape; its rules are few, and its read model is
 * `shop-read-model.ts`: a change to the demo's rules, commands or read model breaks no library test.
 */
import { z } from 'zod';
import type { EventOf, StateOf } from '../../schemas/avro-types.js';
import { defineAggregate } from '../../schemas/catalog.js';
import type { EventCodec } from '../../schemas/codec.js';
import { AggregateRoot, type StoredAggregate } from '../../write/aggregate.js';
import {
  commandHandler,
  defineCommand,
  type CommandHandlerOptions,
  type CommandResult,
} from '../../write/command-handler.js';
import type { WriteStore } from '../../write/ports.js';
import { Repository } from '../../write/repository.js';

export const CustomerType = defineAggregate({
  type: 'Customer',
  state: {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'name', type: 'string' },
      { name: 'email', type: 'string' },
    ],
  },
  events: {
    CustomerRegistered: {
      fields: [
        { name: 'name', type: 'string' },
        { name: 'email', type: 'string' },
      ],
    },
    CustomerRenamed: { fields: [{ name: 'name', type: 'string' }] },
    CustomerEmailChanged: { fields: [{ name: 'email', type: 'string' }] },
    CustomerDeleted: { fields: [], deletes: true },
  },
});

const lineFields = [
  { name: 'lineId', type: 'string' },
  { name: 'sku', type: 'string' },
  { name: 'quantity', type: 'int' },
  { name: 'unitPriceCents', type: 'long' },
] as const;
const orderLine = { type: 'record', name: 'OrderLine', fields: lineFields } as const;

export const OrderType = defineAggregate({
  type: 'Order',
  state: {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'customerId', type: 'string' },
      /** open | placed | cancelled */
      { name: 'status', type: 'string' },
      { name: 'lines', type: { type: 'array', items: orderLine } },
      { name: 'totalCents', type: 'long' },
    ],
  },
  events: {
    OrderCreated: { fields: [{ name: 'customerId', type: 'string' }] },
    OrderLineAdded: { fields: lineFields },
    OrderLineRemoved: { fields: [{ name: 'lineId', type: 'string' }] },
    OrderPlaced: { fields: [] },
    OrderCancelled: { fields: [{ name: 'reason', type: 'string' }] },
    OrderDeleted: { fields: [], deletes: true },
  },
});

export const shopAggregates = [CustomerType, OrderType] as const;

type CustomerState = StateOf<typeof CustomerType>;
type OrderState = StateOf<typeof OrderType>;

export class Customer extends AggregateRoot.of(CustomerType) {
  register(name: string, email: string): void {
    this.ensure(!this.exists && this.version === 0, 'is already registered');
    this.raise({ type: 'CustomerRegistered', data: { name, email } });
  }

  /** Renaming to the current name raises nothing. */
  rename(name: string): void {
    if (this.requireState().name === name) return;
    this.raise({ type: 'CustomerRenamed', data: { name } });
  }

  /** Changing to the current email raises nothing. */
  changeEmail(email: string): void {
    if (this.requireState().email === email) return;
    this.raise({ type: 'CustomerEmailChanged', data: { email } });
  }

  delete(): void {
    this.requireState();
    this.raise({ type: 'CustomerDeleted', data: {} });
  }

  protected when(
    state: CustomerState | null,
    event: EventOf<typeof CustomerType>,
  ): CustomerState | null {
    switch (event.type) {
      case 'CustomerRegistered':
        return { id: this.id, ...event.data };
      case 'CustomerRenamed':
        return state && { ...state, name: event.data.name };
      case 'CustomerEmailChanged':
        return state && { ...state, email: event.data.email };
      case 'CustomerDeleted':
        return null;
    }
  }
}

export class Order extends AggregateRoot.of(OrderType) {
  create(customerId: string): void {
    this.ensure(!this.exists && this.version === 0, 'already exists');
    this.raise({ type: 'OrderCreated', data: { customerId } });
  }

  /** Line ids are unique in an order: the read model's `order_lines` is keyed by them. */
  addLine(line: OrderState['lines'][number]): void {
    const state = this.requireState();
    this.ensure(
      !state.lines.some((l) => l.lineId === line.lineId),
      `line ${line.lineId} already exists`,
    );
    this.raise({ type: 'OrderLineAdded', data: { ...line } });
  }

  removeLine(lineId: string): void {
    const state = this.requireState();
    this.ensure(
      state.lines.some((l) => l.lineId === lineId),
      `line ${lineId} does not exist`,
    );
    this.raise({ type: 'OrderLineRemoved', data: { lineId } });
  }

  place(): void {
    this.requireState();
    this.raise({ type: 'OrderPlaced', data: {} });
  }

  delete(): void {
    this.requireState();
    this.raise({ type: 'OrderDeleted', data: {} });
  }

  protected when(state: OrderState | null, event: EventOf<typeof OrderType>): OrderState | null {
    const withLines = (s: OrderState, lines: OrderState['lines']): OrderState => ({
      ...s,
      lines,
      totalCents: lines.reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0),
    });
    switch (event.type) {
      case 'OrderCreated':
        return { id: this.id, ...event.data, status: 'open', lines: [], totalCents: 0 };
      case 'OrderLineAdded':
        return state && withLines(state, [...state.lines, { ...event.data }]);
      case 'OrderLineRemoved':
        return (
          state &&
          withLines(
            state,
            state.lines.filter((l) => l.lineId !== event.data.lineId),
          )
        );
      case 'OrderPlaced':
        return state && { ...state, status: 'placed' };
      case 'OrderCancelled':
        return state && { ...state, status: 'cancelled' };
      case 'OrderDeleted':
        return null;
    }
  }
}

const customer = { commandId: z.string().min(1), customerId: z.string().min(1) };
const order = { commandId: z.string().min(1), orderId: z.string().min(1) };

export const RegisterCustomer = defineCommand(Customer, {
  name: 'RegisterCustomer',
  schema: z.object({ ...customer, name: z.string().min(1), email: z.string().min(3) }),
  aggregateId: (c) => c.customerId,
  execute: (a, c) => {
    a.register(c.name, c.email);
  },
});

export const RenameCustomer = defineCommand(Customer, {
  name: 'RenameCustomer',
  schema: z.object({ ...customer, name: z.string().min(1) }),
  aggregateId: (c) => c.customerId,
  execute: (a, c) => {
    a.rename(c.name);
  },
});

export const ChangeCustomerEmail = defineCommand(Customer, {
  name: 'ChangeCustomerEmail',
  schema: z.object({ ...customer, email: z.string().min(3) }),
  aggregateId: (c) => c.customerId,
  execute: (a, c) => {
    a.changeEmail(c.email);
  },
});

export const DeleteCustomer = defineCommand(Customer, {
  name: 'DeleteCustomer',
  schema: z.object(customer),
  aggregateId: (c) => c.customerId,
  execute: (a) => {
    a.delete();
  },
});

export const CreateOrder = defineCommand(Order, {
  name: 'CreateOrder',
  schema: z.object({ ...order, customerId: z.string().min(1) }),
  aggregateId: (c) => c.orderId,
  execute: (a, c) => {
    a.create(c.customerId);
  },
});

export const AddOrderLine = defineCommand(Order, {
  name: 'AddOrderLine',
  schema: z.object({
    ...order,
    lineId: z.string().min(1),
    sku: z.string().min(1),
    quantity: z.number().int(),
    unitPriceCents: z.number().int().min(0),
  }),
  aggregateId: (c) => c.orderId,
  execute: (a, { lineId, sku, quantity, unitPriceCents }) => {
    a.addLine({ lineId, sku, quantity, unitPriceCents });
  },
});

export const RemoveOrderLine = defineCommand(Order, {
  name: 'RemoveOrderLine',
  schema: z.object({ ...order, lineId: z.string().min(1) }),
  aggregateId: (c) => c.orderId,
  execute: (a, c) => {
    a.removeLine(c.lineId);
  },
});

export const PlaceOrder = defineCommand(Order, {
  name: 'PlaceOrder',
  schema: z.object(order),
  aggregateId: (c) => c.orderId,
  execute: (a) => {
    a.place();
  },
});

export const DeleteOrder = defineCommand(Order, {
  name: 'DeleteOrder',
  schema: z.object(order),
  aggregateId: (c) => c.orderId,
  execute: (a) => {
    a.delete();
  },
});

export type ShopCommandName =
  | 'RegisterCustomer'
  | 'RenameCustomer'
  | 'ChangeCustomerEmail'
  | 'DeleteCustomer'
  | 'CreateOrder'
  | 'AddOrderLine'
  | 'RemoveOrderLine'
  | 'PlaceOrder'
  | 'DeleteOrder';

export type ShopCommands = Readonly<
  Record<ShopCommandName, (input: unknown) => Promise<CommandResult>>
>;

/** The shop's command handlers over any `WriteStore` (MongoDB, or in memory in unit tests). */
export function shopCommands(
  store: WriteStore,
  codec: EventCodec,
  options: CommandHandlerOptions = {},
): ShopCommands {
  const customers = new Repository<CustomerState, Customer>({
    store,
    codec,
    aggregateType: 'Customer',
    create: (id, s) => new Customer(id, s as StoredAggregate<CustomerState> | undefined),
  });
  const orders = new Repository<OrderState, Order>({
    store,
    codec,
    aggregateType: 'Order',
    create: (id, s) => new Order(id, s as StoredAggregate<OrderState> | undefined),
  });
  return {
    RegisterCustomer: commandHandler(customers, RegisterCustomer, options),
    RenameCustomer: commandHandler(customers, RenameCustomer, options),
    ChangeCustomerEmail: commandHandler(customers, ChangeCustomerEmail, options),
    DeleteCustomer: commandHandler(customers, DeleteCustomer, options),
    CreateOrder: commandHandler(orders, CreateOrder, options),
    AddOrderLine: commandHandler(orders, AddOrderLine, options),
    RemoveOrderLine: commandHandler(orders, RemoveOrderLine, options),
    PlaceOrder: commandHandler(orders, PlaceOrder, options),
    DeleteOrder: commandHandler(orders, DeleteOrder, options),
  };
}
