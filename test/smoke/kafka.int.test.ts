import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs';
import { testServers, uniqueName, waitFor } from '../support/servers.js';
import { createTopicsAndWait } from '../../ops/topics.js';

const kafka = new Kafka({
  clientId: 'smoke',
  brokers: testServers().kafkaBrokers,
  logLevel: logLevel.NOTHING,
});
let admin: Admin;

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await admin.disconnect();
});

it('creates a compacted topic, produces with an idempotent producer and consumes in a group', async () => {
  const topic = uniqueName('smoke');
  await createTopicsAndWait(admin, [
    { topic, numPartitions: 3, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
  ]);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({
    topic,
    acks: -1,
    messages: [1, 2, 3].map((v) => ({
      key: 'agg-1',
      value: `v${v}`,
      headers: { version: String(v) },
    })),
  });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: uniqueName('smoke-group') });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen: string[] = [];
  await consumer.run({
    eachMessage: ({ message }) => {
      seen.push(String(message.value));
      return Promise.resolve();
    },
  });
  try {
    await waitFor('three messages', () => seen.length === 3);
  } finally {
    await consumer.disconnect();
  }
  // One key, one partition: the order is the order sent.
  expect(seen).toEqual(['v1', 'v2', 'v3']);
  const configs = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['cleanup.policy'] }],
  });
  expect(configs.resources[0]?.configEntries[0]?.configValue).toBe('compact');
});
