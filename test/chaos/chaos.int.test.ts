/**
 * The short chaos run of `npm test`: 5k commands from two writer processes, at least 10 kill -9 of
 * writers, relay and sink (each kind killed), one broker restart and one MariaDB restart (relay and
 * sink started again while each is down: they must wait, not exit), on a broker and a MariaDB of its own (restarting the shared ones would disturb other tests). `npm run chaos` is
 * the full-size run.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { type Stack } from '../../infra/local/stack.js';
import { startOwnStack } from '../support/own-stack.js';
import { testServers } from '../support/servers.js';
import { chaosLine, runChaos } from './chaos.js';

let stack: Stack;

beforeAll(async () => {
  stack = await startOwnStack(['kafka', 'mysql'], 'cqrs-chaos');
}, 240_000);
afterAll(async () => {
  await stack.stop();
});

it('loses, duplicates and reorders nothing under kill -9 of writers, relay and sink and server restarts', async () => {
  const shared = testServers();
  const lines: string[] = [];
  const result = await runChaos(
    {
      kafkaBrokers: (stack.env.KAFKA_BROKERS ?? '').split(','),
      mysqlUrl: stack.env.MYSQL_URL ?? '',
      mysqlSinkUrl: stack.env.MYSQL_SINK_URL ?? '',
      schemaRegistryUrl: shared.schemaRegistryUrl,
      mongodbUri: shared.mongodbUri,
      mongoKind: shared.mongoKind,
      ...(stack.get('kafka') ? { kafka: stack.get('kafka') } : {}),
      ...(stack.get('mysql') ? { mysql: stack.get('mysql') } : {}),
    },
    {
      commands: 5000,
      aggregates: 300,
      kills: 10,
      brokerRestarts: 1,
      mysqlRestarts: 1,
      seed: 20261124,
      quietTimeoutMs: 180_000,
      log: (l) => lines.push(l),
    },
  );
  process.stdout.write(
    `\n${chaosLine(result)} (events=${result.events} refused=${result.refused} kills: writer=${result.killsBy.writer} relay=${result.killsBy.relay} sink=${result.killsBy.sink}, ${result.inFlightAtWriterKills} commands in flight at writer kills; started while a server was down=${result.startsWhileDown} (waited ${result.waitedWhileDown}, exited ${result.exitsWhileDown}); mongodb=${shared.mongoKind} seconds=${result.seconds})\n`,
  );
  const summary = `${chaosLine(result)}\n${lines.join('\n')}\n${result.mismatches.join('\n')}`;
  expect({ summary, ok: result.checksum === 'match' }).toEqual({ summary, ok: true });
  expect(result).toMatchObject({ lost: 0, duplicated: 0, reordered: 0, checksum: 'match' });
  expect(result.kills).toBeGreaterThanOrEqual(10);
  expect(result.killsBy.writer).toBeGreaterThanOrEqual(3);
  expect(result.killsBy.relay).toBeGreaterThanOrEqual(1);
  expect(result.killsBy.sink).toBeGreaterThanOrEqual(1);
  expect(result.restarts).toBe(2);
  // Issue 17: a relay or sink started while the broker or MariaDB is down used to exit at once.
  expect({
    starts: result.startsWhileDown,
    waited: result.waitedWhileDown,
    exits: result.exitsWhileDown,
  }).toEqual({ starts: 3, waited: 3, exits: 0 });
  expect(result.commands + result.refused).toBe(5000);
  expect(result.events).toBeGreaterThanOrEqual(result.commands);
}, 600_000);
