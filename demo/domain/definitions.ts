/**
 * The demo domain's aggregate types and event types: the contract its write side, the relay and its
 * projections share. Declared with the public API, as any user would.
 */
import { defineAggregate } from '../../index.js';

export const Customer = defineAggregate({
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

const orderLine = {
  type: 'record',
  name: 'OrderLine',
  fields: [
    { name: 'lineId', type: 'string' },
    { name: 'sku', type: 'string' },
    { name: 'quantity', type: 'int' },
    { name: 'unitPriceCents', type: 'long' },
  ],
} as const;

export const Order = defineAggregate({
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
    OrderLineAdded: {
      fields: [
        { name: 'lineId', type: 'string' },
        { name: 'sku', type: 'string' },
        { name: 'quantity', type: 'int' },
        { name: 'unitPriceCents', type: 'long' },
      ],
    },
    OrderLineRemoved: { fields: [{ name: 'lineId', type: 'string' }] },
    OrderPlaced: { fields: [] },
    OrderCancelled: { fields: [{ name: 'reason', type: 'string' }] },
    OrderDeleted: { fields: [], deletes: true },
  },
});

export interface OrderLineState {
  lineId: string;
  sku: string;
  quantity: number;
  unitPriceCents: number;
}
export interface CustomerState {
  id: string;
  name: string;
  email: string;
}
export interface OrderState {
  id: string;
  customerId: string;
  status: 'open' | 'placed' | 'cancelled';
  lines: OrderLineState[];
  totalCents: number;
}

export const demoAggregates = [Customer, Order] as const;
