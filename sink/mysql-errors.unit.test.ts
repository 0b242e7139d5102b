import { describe, expect, it } from '@jest/globals';
import { classifyError, isRetriableSqlError } from './mysql-errors.js';

describe('MySQL errors', () => {
  it('sorts MySQL errors into retriable and not', () => {
    expect(isRetriableSqlError({ errno: 1213 })).toBe(true);
    expect(isRetriableSqlError({ code: 'ECONNREFUSED' })).toBe(true);
    expect(isRetriableSqlError(null)).toBe(false);
    expect(classifyError({ errno: 1406, sqlState: '22001', message: 'too long' }).code).toBe(
      'constraint_violated',
    );
    expect(classifyError(new Error('x')).code).toBe('projection_failed');
  });
});
