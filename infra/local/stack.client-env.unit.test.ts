import { expect, it } from '@jest/globals';
import { printableEnv } from './stack.js';
import type { ServerHandle, ServerName, ServerOrigin } from './types.js';

const handle = (
  name: ServerName,
  origin: ServerOrigin,
  env: Record<string, string>,
): ServerHandle => ({
  name,
  origin,
  description: name,
  env,
  pids: () => [],
  stop: () => Promise.resolve(),
});

// Reported: `npm run demo` printed MYSQL_URL with the password hidden and nothing said where it was.
it('prints the URLs of servers this run started in full, and hides passwords the environment gave', () => {
  const lines = printableEnv([
    handle('kafka', 'env', { KAFKA_BROKERS: '127.0.0.1:9092' }),
    handle('mysql', 'local', {
      MYSQL_URL: 'mysql://cqrs_admin:0123abcd@127.0.0.1:44961/cqrs_read',
      MYSQL_SINK_URL: 'mysql://cqrs_sink:4567ef@127.0.0.1:44961/cqrs_read',
    }),
    handle('mongodb', 'env', { MONGODB_URI: 'mongodb://app:s3cret@db.example:27017/' }),
  ]);
  expect(lines).toEqual([
    ['KAFKA_BROKERS', '127.0.0.1:9092'],
    ['MYSQL_URL', 'mysql://cqrs_admin:0123abcd@127.0.0.1:44961/cqrs_read'],
    ['MYSQL_SINK_URL', 'mysql://cqrs_sink:4567ef@127.0.0.1:44961/cqrs_read'],
    ['MONGODB_URI', 'mongodb://app:***@db.example:27017/'],
  ]);
});
