import { describe, expect, it } from '@jest/globals';
import { loadDemoWebConfig } from './config.js';

describe('demo web configuration', () => {
  const env = {
    MONGODB_URI: 'mongodb://m:27017',
    MYSQL_URL: 'mysql://u@h/db',
    KAFKA_BROKERS: 'a:1, b:2',
    SCHEMA_REGISTRY_URL: 'http://r',
  };

  it('reads the broker connection as the relay and the sink do: brokers, SASL, TLS', () => {
    expect(loadDemoWebConfig(env)).toMatchObject({
      kafkaBrokers: ['a:1', 'b:2'],
      kafkaSasl: null,
      kafkaSsl: false,
    });
    const secured = loadDemoWebConfig({
      ...env,
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'demo',
      KAFKA_SASL_PASSWORD: 'secret',
      KAFKA_SSL: 'true',
    });
    expect(secured).toMatchObject({
      kafkaSasl: { mechanism: 'scram-sha-512', username: 'demo', password: 'secret' },
      kafkaSsl: true,
    });
  });

  it('refuses a broker connection that cannot work, naming the variable and not the password', () => {
    expect(() => loadDemoWebConfig({ ...env, KAFKA_BROKERS: ' , ' })).toThrow(/KAFKA_BROKERS/);
    let message = '';
    try {
      loadDemoWebConfig({ ...env, KAFKA_SASL_USERNAME: 'demo', KAFKA_SASL_PASSWORD: 'hunter2' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/demo configuration is invalid[\s\S]*KAFKA_SASL_MECHANISM/);
    expect(message).not.toContain('hunter2');
  });
});
