import { describe, expect, it } from '@jest/globals';
import { dltHeaders } from './dead-letter.js';

describe('dead letters', () => {
  it('builds dead-letter headers', () => {
    const h = dltHeaders({
      record: {
        kind: 'dead',
        aggregateType: 'A',
        aggregateId: 'i',
        version: 1,
        eventId: 'e',
        eventType: 'E',
        topic: 't',
        partition: 2,
        offset: '7',
        key: null,
        value: null,
        headers: { k: 'v' },
        errorCode: 'x',
        errorMessage: 'm',
        attempts: 0,
        firstFailedAt: null,
        heldAt: new Date(0),
      },
      errorCode: 'x',
      errorMessage: 'm',
    });
    expect(h).toMatchObject({
      k: 'v',
      'cqrs-dlt-original-partition': '2',
      'cqrs-dlt-attempts': '1',
      'cqrs-dlt-first-failed-at': '1970-01-01T00:00:00.000Z',
    });
  });
});
