import { describe, expect, it } from '@jest/globals';
import { idProblem } from './envelope.js';
import { illFormedString, stringProblem } from './well-formed.js';

// Issue 12, D1: strings with a lone surrogate were saved; each store replaced it differently
// (MongoDB U+FFFD, Avro ED A0 80, MySQL three U+FFFD). This is the one check that refuses them.

describe('stringProblem', () => {
  it('accepts well-formed strings, surrogate pairs (emoji, other astral characters) included', () => {
    for (const s of ['', 'plain', 'é ü ß', '😀', 'a😀b', '𝄞𠜎🏳️‍🌈', '\uD83D\uDE00']) {
      expect(stringProblem(s)).toBeUndefined();
    }
  });

  it('names a lone high or low surrogate and where it is, anywhere in the string', () => {
    expect(stringProblem('lone \uD800 x')).toBe(
      'is not well-formed Unicode (a lone surrogate \\uD800 at index 5)',
    );
    expect(stringProblem('\uDC00')).toMatch(/\\uDC00 at index 0\)$/);
    expect(stringProblem('end\uDBFF')).toMatch(/\\uDBFF at index 3\)$/);
    // A pair in the wrong order is two lone halves; the first is named.
    expect(stringProblem('😀\uDE00\uD83D')).toMatch(/\\uDE00 at index 2\)$/);
  });
});

describe('illFormedString', () => {
  it('finds nothing in well-formed values of any shape', () => {
    expect(
      illFormedString({
        name: '😀 shelf',
        items: [{ sku: '𠜎' }, { sku: 'b', tags: ['x', '🏷'] }],
        labels: { ['🏷']: '✓' },
        count: 3,
        none: null,
        missing: undefined,
        at: new Date(0),
        bytes: Buffer.from([0xed, 0xa0, 0x80]),
        byId: new Map([['k😀', { v: 'w' }]]),
      }),
    ).toBeUndefined();
    expect(illFormedString(7)).toBeUndefined();
    expect(illFormedString(null)).toBeUndefined();
  });

  it('names the path of a bad value: fields, nested objects, array elements', () => {
    expect(illFormedString({ name: 'lone \uD800 x' })).toEqual({
      path: 'name',
      problem: 'is not well-formed Unicode (a lone surrogate \\uD800 at index 5)',
    });
    const order = { lines: [{ sku: 'a' }, { sku: 'b' }, { sku: 'c\uDC00' }] };
    expect(illFormedString(order)?.path).toBe('lines[2].sku');
    expect(illFormedString({ a: { b: { c: [['ok', '\uD801']] } } })?.path).toBe('a.b.c[0][1]');
    expect(illFormedString(['ok', { x: '\uDFFF' }])?.path).toBe('[1].x');
    expect(illFormedString('\uD800')?.path).toBe('(root)');
  });

  it('names a bad key (escaped, so the message itself is well-formed) and bad Map keys and values', () => {
    const bad = illFormedString({ labels: { ok: 'v', ['k\uD800']: 'v' } });
    expect(bad).toEqual({
      path: 'labels["k\\ud800"]',
      problem: 'is a key that is not well-formed Unicode (a lone surrogate \\uD800 at index 1)',
    });
    expect(stringProblem(bad?.path ?? '')).toBeUndefined();
    expect(illFormedString({ ['\uDC00']: 1 })?.path).toBe('["\\udc00"]');
    expect(illFormedString({ m: new Map([['k\uD800', 'v']]) })?.path).toBe('m["k\\ud800"]');
    expect(illFormedString({ m: new Map([['k', 'v\uD800']]) })?.path).toBe('m.k');
    // Keys that are not identifiers are quoted, so a dot in a key is not read as nesting.
    expect(illFormedString({ 'a.b': { 'c d': '\uD800' } })?.path).toBe('["a.b"]["c d"]');
  });

  it('reports the first bad string, in key order', () => {
    expect(illFormedString({ a: 'ok', b: '\uD800', c: '\uDC00' })?.path).toBe('b');
  });
});

describe('idProblem', () => {
  it('refuses an id that is not well-formed Unicode, and counts a pair as one character', () => {
    expect(idProblem('id\uD800')).toBe(
      'is not well-formed Unicode (a lone surrogate \\uD800 at index 2)',
    );
    expect(idProblem('😀'.repeat(191))).toBeUndefined();
  });
});
