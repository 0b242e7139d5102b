import { describe, expect, it } from '@jest/globals';
import { redactUrls, safeForLog } from './redact.js';

describe('redaction', () => {
  it('removes passwords from every URL in a string', () => {
    expect(
      redactUrls(
        'connect mysql://sink:s3cr3t@db:3306/x and mongodb://a:b%40c@m1,m2/?replicaSet=rs0',
      ),
    ).toBe('connect mysql://sink:***@db:3306/x and mongodb://a:***@m1,m2/?replicaSet=rs0');
    expect(redactUrls('http://host:8081/apis')).toBe('http://host:8081/apis');
  });

  it('makes a config object safe to log', () => {
    expect(
      safeForLog({
        mysqlUrl: 'mysql://u:pw@h/db',
        brokers: ['b:9092'],
        apiToken: 'abc',
        batchSize: 500,
      }),
    ).toEqual({
      mysqlUrl: 'mysql://u:***@h/db',
      brokers: ['b:9092'],
      apiToken: '***',
      batchSize: 500,
    });
  });
});
