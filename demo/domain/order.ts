import { z } from 'zod';
import { AggregateRoot, type CommandDefinition } from '../../index.js';
import type { OrderLineState, OrderState } from './definitions.js';

export type OrderEvent =
  | { readonly type: 'OrderCreated'; readonly data: { customerId: string } }
  | { readonly type: 'OrderLineAdded'; readonly data: OrderLineState }
  | { readonly type: 'OrderLineRemoved'; readonly data: { lineId: string } }
  | { readonly type: 'OrderPlaced'; readonly data: Record<string, never> }
  | { readonly type: 'OrderCancelled'; readonly data: { reason: string } }
  | { readonly type: 'OrderDeleted'; readonly data: Record<string, never> };

/** Most lines an order may have (keeps records far below the broker's size limit). */
export const MAX_ORDER_LINES = 200;

export class Order extends AggregateRoot<OrderState, OrderEvent> {
  static readonly type = 'Order';
  readonly aggregateType = Order.type;

  create(customerId: string): void {
    this.ensure(!this.exists && this.version === 0, 'already exists');
    this.ensure(customerId.length > 0, 'customerId must not be empty');
    this.raise({ type: 'OrderCreated', data: { customerId } });
  }

  addLine(line: OrderLineState): void {
    const state = this.requireState();
    this.ensureOpen(state, 'add lines to');
    this.ensure(Number.isInteger(line.quantity) && line.quantity > 0, 'quantity must be > 0');
    this.ensure(
      Number.isInteger(line.unitPriceCents) && line.unitPriceCents >= 0,
      'unitPriceCents must be >= 0',
    );
    this.ensure(
      !state.lines.some((l) => l.lineId === line.lineId),
      `line ${line.lineId} already exists`,
    );
    this.ensure(state.lines.length < MAX_ORDER_LINES, `at most ${MAX_ORDER_LINES} lines`);
    this.raise({ type: 'OrderLineAdded', data: { ...line } });
  }

  removeLine(lineId: string): void {
    const state = this.requireState();
    this.ensureOpen(state, 'remove lines from');
    this.ensure(
      state.lines.some((l) => l.lineId === lineId),
      `line ${lineId} does not exist`,
    );
    this.raise({ type: 'OrderLineRemoved', data: { lineId } });
  }

  place(): void {
    const state = this.requireState();
    this.ensureOpen(state, 'place');
    this.ensure(state.lines.length > 0, 'cannot place an order without lines');
    this.raise({ type: 'OrderPlaced', data: {} });
  }

  cancel(reason: string): void {
    const state = this.requireState();
    this.ensure(state.status !== 'cancelled', 'is already cancelled');
    this.raise({ type: 'OrderCancelled', data: { reason } });
  }

  delete(): void {
    this.requireState();
    this.raise({ type: 'OrderDeleted', data: {} });
  }

  private ensureOpen(state: OrderState, what: string): void {
    this.ensure(state.status === 'open', `cannot ${what} an order that is ${state.status}`);
  }

  protected when(state: OrderState | null, event: OrderEvent): OrderState | null {
    switch (event.type) {
      case 'OrderCreated':
        return {
          id: this.id,
          customerId: event.data.customerId,
          status: 'open',
          lines: [],
          totalCents: 0,
        };
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

function withLines(state: OrderState, lines: OrderLineState[]): OrderState {
  return {
    ...state,
    lines,
    totalCents: lines.reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0),
  };
}

export const createOrder = (
  id: string,
  stored?: { version: number; state: Record<string, unknown> | null },
): Order =>
  new Order(id, stored && { version: stored.version, state: stored.state as OrderState | null });

const base = { commandId: z.string().min(1), orderId: z.string().min(1) };

export const CreateOrder = {
  name: 'CreateOrder',
  schema: z.object({ ...base, customerId: z.string().min(1) }),
  aggregateId: (c) => c.orderId,
  execute: (a, c) => {
    a.create(c.customerId);
  },
} satisfies CommandDefinition<{ commandId: string; orderId: string; customerId: string }, Order>;

export const AddOrderLine = {
  name: 'AddOrderLine',
  schema: z.object({
    ...base,
    lineId: z.string().min(1),
    sku: z.string().min(1),
    quantity: z.number().int(),
    unitPriceCents: z.number().int().min(0),
  }),
  aggregateId: (c) => c.orderId,
  execute: (a, c) => {
    a.addLine({
      lineId: c.lineId,
      sku: c.sku,
      quantity: c.quantity,
      unitPriceCents: c.unitPriceCents,
    });
  },
} satisfies CommandDefinition<
  {
    commandId: string;
    orderId: string;
    lineId: string;
    sku: string;
    quantity: number;
    unitPriceCents: number;
  },
  Order
>;

export const RemoveOrderLine = {
  name: 'RemoveOrderLine',
  schema: z.object({ ...base, lineId: z.string().min(1) }),
  aggregateId: (c) => c.orderId,
  execute: (a, c) => {
    a.removeLine(c.lineId);
  },
} satisfies CommandDefinition<{ commandId: string; orderId: string; lineId: string }, Order>;

export const PlaceOrder = {
  name: 'PlaceOrder',
  schema: z.object(base),
  aggregateId: (c) => c.orderId,
  execute: (a) => {
    a.place();
  },
} satisfies CommandDefinition<{ commandId: string; orderId: string }, Order>;

export const CancelOrder = {
  name: 'CancelOrder',
  schema: z.object({ ...base, reason: z.string() }),
  aggregateId: (c) => c.orderId,
  execute: (a, c) => {
    a.cancel(c.reason);
  },
} satisfies CommandDefinition<{ commandId: string; orderId: string; reason: string }, Order>;

export const DeleteOrder = {
  name: 'DeleteOrder',
  schema: z.object(base),
  aggregateId: (c) => c.orderId,
  execute: (a) => {
    a.delete();
  },
} satisfies CommandDefinition<{ commandId: string; orderId: string }, Order>;
