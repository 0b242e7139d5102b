import { describe, expect, it } from '@jest/globals';
import { loadRelayConfig } from '../relay/config.js';
import { loadSinkConfig } from '../sink/config.js';
import { kafkaClientOptions } from './kafka.js';

const relayEnv = { MONGODB_URI: 'mongodb://m', SCHEMA_REGISTRY_URL: 'http://r' };
const sinkEnv = { SCHEMA_REGISTRY_URL: 'http://r', MYSQL_URL: 'mysql://u@h/db' };

describe('the Kafka settings of both processes', () => {
  it('are read from the same variables the same way, and mapped to client options once', () => {
    const KAFKA_BROKERS = ' a:1, ,b:2 ';
    const relay = loadRelayConfig({ ...relayEnv, KAFKA_BROKERS });
    const sink = loadSinkConfig({ ...sinkEnv, KAFKA_BROKERS });
    expect(relay.kafkaBrokers).toEqual(['a:1', 'b:2']);
    expect(sink.kafkaBrokers).toEqual(relay.kafkaBrokers);
    expect(kafkaClientOptions(relay, 'r')).toEqual({ clientId: 'r', brokers: ['a:1', 'b:2'] });
    expect(kafkaClientOptions(sink, 's')).toEqual({ clientId: 's', brokers: ['a:1', 'b:2'] });
  });
});
