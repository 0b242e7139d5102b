import { expect, it } from '@jest/globals';
import { inKeyRange, quoteIdentifier } from './sql.js';

it('quotes an identifier and doubles a backtick inside it', () => {
  expect(quoteIdentifier('orders')).toBe('`orders`');
  expect(quoteIdentifier('a`b')).toBe('`a``b`');
});

it('writes a key range with either bound left out when null', () => {
  expect(inKeyRange('id', { after: 'a', upTo: 'b' })).toEqual({
    where: '`id` > ? AND `id` <= ?',
    params: ['a', 'b'],
  });
  expect(inKeyRange('id', { after: null, upTo: 'b' })).toEqual({
    where: '`id` <= ?',
    params: ['b'],
  });
  expect(inKeyRange('id', { after: null, upTo: null })).toEqual({ where: 'TRUE', params: [] });
});
