import { expect, it } from '@jest/globals';
import { aggregateCollectionName } from './outbox.js';

it('names aggregate collections after the aggregate type', () => {
  expect(aggregateCollectionName('OrderLine')).toBe('order-line');
});
