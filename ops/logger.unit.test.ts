import { expect, it } from '@jest/globals';
import { PipelineError } from '../schemas/errors.js';
import { createLogger } from './logger.js';

const SECRET = 'pw-s3cret';

function capture(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (l: string) => void lines.push(l) });
  return { lines, logger };
}

// Issue 16: ops/redact.ts existed but no logger used it, so a logged config or a driver's error
// message naming the URL wrote the MySQL password into the log.
it('logs configs, URLs, errors and bindings without their passwords', () => {
  const { lines, logger } = capture();
  const url = `mysql://sink:${SECRET}@db:3306/read`;
  logger
    .child({ component: 'sink', target: url })
    .info(
      { config: { mysqlUrl: url, sasl: { password: SECRET }, apiToken: SECRET, batchSize: 500 } },
      `connecting to ${url}`,
    );
  logger.warn(
    { urls: [`mongodb://app:${SECRET}@m1,m2/?replicaSet=rs0`], password: SECRET },
    'retrying',
  );
  const cause = new Error(`connect ECONNREFUSED ${url}`);
  logger.error(
    {
      err: new PipelineError('database_unavailable', `MySQL unreachable at ${url}`, {
        retriable: true,
        cause,
        context: { url },
      }),
    },
    'batch failed',
  );
  logger.error({ err: `plain ${url}` }, 'as a string');
  logger.info('%s then %s', url, 'done');

  expect(lines).toHaveLength(5);
  expect(lines.filter((l) => l.includes(SECRET))).toEqual([]);
  const [first, second, third] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(first).toMatchObject({
    target: 'mysql://sink:***@db:3306/read',
    msg: 'connecting to mysql://sink:***@db:3306/read',
    config: {
      mysqlUrl: 'mysql://sink:***@db:3306/read',
      sasl: { password: '***' },
      apiToken: '***',
      batchSize: 500,
    },
  });
  expect(second).toMatchObject({
    urls: ['mongodb://app:***@m1,m2/?replicaSet=rs0'],
    password: '***',
  });
  expect(third).toMatchObject({
    err: {
      code: 'database_unavailable',
      retriable: true,
      // pino appends the causes' messages.
      message:
        'MySQL unreachable at mysql://sink:***@db:3306/read: connect ECONNREFUSED mysql://sink:***@db:3306/read',
      context: { url: 'mysql://sink:***@db:3306/read' },
    },
  });
});

it('keeps what is not a secret: the lease token, numbers, URLs without a password', () => {
  const { lines, logger } = capture();
  logger.info({ token: 7, registry: 'http://registry:8081/apis', n: 3 }, 'lease acquired');
  expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
    token: 7,
    registry: 'http://registry:8081/apis',
    n: 3,
  });
});
