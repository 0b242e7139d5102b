import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import { testServers, uniqueName } from '../../test/support/servers.js';
import { loadHarnessConfig } from './config.js';
import { isHarnessError } from './errors.js';
import { freePort } from './ports.js';
import { startStack, type Stack } from './stack.js';
import { ownServersEnv } from '../../test/support/own-stack.js';
import { createTopicsAndWait } from '../../ops/topics.js';

async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('a stack of its own (the chaos tests restart servers like this)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ config: loadHarnessConfig(ownServersEnv('cqrs-stack')) });
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('reports one line a server, and the variables clients need', () => {
    expect(stack.lines().map((l) => l.split(':')[0])).toEqual([
      'kafka',
      'schema-registry',
      'mysql',
      'mongodb',
    ]);
    expect(Object.keys(stack.env).sort()).toEqual([
      'CQRS_SYNC_MONGO_KIND',
      'KAFKA_BROKERS',
      'MONGODB_URI',
      'MYSQL_SINK_URL',
      'MYSQL_URL',
      'SCHEMA_REGISTRY_URL',
    ]);
    expect(stack.mongo?.capabilities.changeStreams).toBe(true);
    expect(stack.get('kafka')?.origin).toBe('local');
    expect(stack.servers.every((s) => s.pids().length > 0)).toBe(true);
  });

  it('restarts MariaDB on the same port with its data', async () => {
    const url = stack.env.MYSQL_URL ?? '';
    const table = uniqueName('kept');
    const before = await mysql.createConnection(url);
    await before.query(`CREATE TABLE ${table} (id INT PRIMARY KEY)`);
    await before.query(`INSERT INTO ${table} VALUES (42)`);
    await before.end();
    const pid = stack.get('mysql')?.pids()[0];
    await stack.get('mysql')?.restart?.();
    expect(stack.get('mysql')?.pids()[0]).not.toBe(pid);
    const after = await mysql.createConnection(url);
    const [rows] = await after.query(`SELECT id FROM ${table}`);
    await after.end();
    expect(rows).toEqual([{ id: 42 }]);
  });

  it('brings Kafka back after kill -9 with its topics and messages', async () => {
    const kafka = new Kafka({
      clientId: 'stack-test',
      brokers: (stack.env.KAFKA_BROKERS ?? '').split(','),
      logLevel: logLevel.NOTHING,
    });
    const topic = uniqueName('survives');
    const admin = kafka.admin();
    await admin.connect();
    await createTopicsAndWait(admin, [{ topic, numPartitions: 1 }]);
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'before the crash' }] });
    await producer.disconnect();

    const server = stack.get('kafka');
    await server?.kill?.();
    expect(server?.pids()).toEqual([]);
    await server?.start?.();

    const admin2 = kafka.admin();
    await admin2.connect();
    const offsets = await admin2.fetchTopicOffsets(topic);
    await admin2.disconnect();
    expect(offsets[0]?.high).toBe('1');
  });

  it('stops every server, once, however often it is asked', async () => {
    const pids = stack.servers.flatMap((s) => s.pids());
    await Promise.all([stack.stop(), stack.stop()]);
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive).toEqual([]);
  });
});

describe('servers given by env URLs', () => {
  it('adopts them without starting anything, and says where they came from', async () => {
    const run = testServers();
    const config = loadHarnessConfig({
      PATH: process.env.PATH,
      CQRS_SYNC_SERVERS: 'local',
      KAFKA_BROKERS: run.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: run.schemaRegistryUrl,
      MYSQL_URL: run.mysqlUrl,
      MYSQL_SINK_URL: run.mysqlSinkUrl,
      MONGODB_URI: run.mongodbUri,
    });
    const adopted = await startStack({ config });
    try {
      expect(adopted.servers.map((s) => s.origin)).toEqual(['env', 'env', 'env', 'env']);
      expect(adopted.servers.flatMap((s) => s.pids())).toEqual([]);
      const lines = adopted.lines().join('\n');
      expect(lines).toContain('from KAFKA_BROKERS');
      expect(lines).toContain('from SCHEMA_REGISTRY_URL');
      expect(lines).toMatch(/mysql: MySQL at mysql:\/\/cqrs_admin:\*\*\*@/); // no password printed
      expect(lines).toMatch(
        run.mongoKind === 'real'
          ? /from MONGODB_URI \(transactions/
          : /from MONGODB_URI \(no transactions/,
      );
      expect(adopted.env.MYSQL_SINK_URL).toBe(run.mysqlSinkUrl);
    } finally {
      await adopted.stop();
    }
  });

  it('refuses a given broker or registry that does not answer, naming the variable', async () => {
    const closed = await freePort();
    const kafkaError = await caught(
      startStack({
        only: ['kafka'],
        config: loadHarnessConfig({ KAFKA_BROKERS: `127.0.0.1:${closed}` }),
      }),
    );
    expect(isHarnessError(kafkaError, 'start_timeout')).toBe(true);
    expect(kafkaError.message).toContain(
      `[kafka] KAFKA_BROKERS=127.0.0.1:${closed} does not answer`,
    );

    const registryError = await caught(
      startStack({
        only: ['schema-registry'],
        config: loadHarnessConfig({ SCHEMA_REGISTRY_URL: `http://127.0.0.1:${closed}` }),
      }),
    );
    expect(registryError.message).toContain('[schema-registry] SCHEMA_REGISTRY_URL=');

    const wrongPath = await caught(
      startStack({
        only: ['schema-registry'],
        config: loadHarnessConfig({
          SCHEMA_REGISTRY_URL: `${testServers().schemaRegistryUrl.replace('/apis/ccompat/v7', '')}/nope`,
        }),
      }),
    );
    expect(isHarnessError(wrongPath, 'setup_failed')).toBe(true);
    expect(wrongPath.message).toContain('/apis/ccompat/v7');
  });
});
