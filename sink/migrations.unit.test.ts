import { describe, expect, it } from '@jest/globals';
import { checksumOf, splitStatements } from './migrations.js';

describe('migration scripts', () => {
  it('splits migration scripts and checksums them', () => {
    expect(splitStatements('-- c\nCREATE TABLE a (x INT);\nCREATE TABLE b (y INT);\n')).toEqual([
      'CREATE TABLE a (x INT)',
      'CREATE TABLE b (y INT)',
    ]);
    expect(checksumOf({ version: 1, name: 'a', sql: 'X;\n' })).toBe(
      checksumOf({ version: 1, name: 'a', sql: ['X'] }),
    );
  });
});
