import { expect, it } from '@jest/globals';
import { quoteIdentifier } from './sql.js';

it('quotes an identifier and doubles a backtick inside it', () => {
  expect(quoteIdentifier('orders')).toBe('`orders`');
  expect(quoteIdentifier('a`b')).toBe('`a``b`');
});
