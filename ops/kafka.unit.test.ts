import { describe, expect, it } from '@jest/globals';
import { loadRelayConfig } from '../relay/config.js';
import { loadSinkConfig } from '../sink/config.js';
import { z } from 'zod';
import { isPipelineError } from '../schemas/errors.js';
import { kafkaClientOptions, kafkaEnvSchema, kafkaSettings } from './kafka.js';
import { createLogger } from './logger.js';

const kafkaEnv = z.object(kafkaEnvSchema);

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

describe('SASL and TLS from the environment', () => {
  const env = { ...relayEnv, KAFKA_BROKERS: 'a:1' };
  const sasl = {
    KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
    KAFKA_SASL_USERNAME: 'svc',
    KAFKA_SASL_PASSWORD: 'hunter2',
  };
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const parse = (extra: Record<string, string>, readFile?: (path: string) => string) =>
    kafkaSettings(
      kafkaEnv.parse({ KAFKA_BROKERS: 'a:1', ...extra }),
      'relay',
      readFile ?? (() => pem),
    );
  const fails = (run: () => unknown, re: RegExp) => {
    try {
      run();
    } catch (e) {
      expect(isPipelineError(e, 'config_invalid')).toBe(true);
      expect((e as Error).message).toMatch(re);
      expect((e as Error).message).not.toMatch(/hunter2/);
      return;
    }
    throw new Error('expected a failure');
  };

  it('default to no authentication and no TLS, the same in both processes', () => {
    for (const c of [loadRelayConfig(env), loadSinkConfig({ ...sinkEnv, KAFKA_BROKERS: 'a:1' })]) {
      expect(c).toMatchObject({ kafkaSasl: null, kafkaSsl: false });
      expect(kafkaClientOptions(c, 'x')).toEqual({ clientId: 'x', brokers: ['a:1'] });
    }
  });

  it('reads each SASL mechanism and TLS, with the CA file read at start-up', () => {
    const c = parse({ ...sasl, KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: '/etc/ca.pem' }, (p) =>
      p === '/etc/ca.pem' ? pem : '',
    );
    expect(c).toEqual({
      kafkaBrokers: ['a:1'],
      kafkaSasl: { mechanism: 'scram-sha-512', username: 'svc', password: 'hunter2' },
      kafkaSsl: { ca: pem },
    });
    expect(kafkaClientOptions(c, 'x')).toMatchObject({
      sasl: { mechanism: 'scram-sha-512', username: 'svc', password: 'hunter2' },
      ssl: { ca: [pem] },
    });
    for (const mechanism of ['plain', 'scram-sha-256']) {
      expect(parse({ ...sasl, KAFKA_SASL_MECHANISM: mechanism }).kafkaSasl?.mechanism).toBe(
        mechanism,
      );
    }
    const tls = parse({ KAFKA_SSL: 'true' });
    expect(tls.kafkaSsl).toBe(true);
    expect(kafkaClientOptions(tls, 'x').ssl).toBe(true);
    // Through the processes' own config modules too.
    expect(loadSinkConfig({ ...sinkEnv, KAFKA_BROKERS: 'a:1', ...sasl }).kafkaSasl).toEqual(
      c.kafkaSasl,
    );
  });

  it('fails at start-up with advice on each bad setting, never showing the password', () => {
    fails(() => loadRelayConfig({ ...env, ...sasl, KAFKA_SASL_MECHANISM: 'gssapi' }), /MECHANISM/);
    fails(
      () => loadSinkConfig({ ...sinkEnv, KAFKA_BROKERS: 'a:1', KAFKA_SSL: 'yes' }),
      /sink configuration is invalid[\s\S]*KAFKA_SSL: must be true or false/,
    );
    fails(
      () => loadRelayConfig({ ...env, ...sasl, KAFKA_SASL_USERNAME: '' }),
      /relay configuration is invalid[\s\S]*set KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/,
    );
    fails(
      () => parse({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'svc' }),
      /KAFKA_SASL_PASSWORD too/,
    );
    fails(() => parse({ KAFKA_SASL_PASSWORD: 'hunter2' }), /without KAFKA_SASL_MECHANISM/);
    fails(() => parse({ KAFKA_SSL_CA_FILE: '/etc/ca.pem' }), /set KAFKA_SSL=true/);
    fails(
      () => parse({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: '/etc/ca.pem' }, () => 'not a cert'),
      /holds no PEM certificate/,
    );
    fails(
      () =>
        loadRelayConfig({
          ...env,
          KAFKA_SSL: 'true',
          KAFKA_SSL_CA_FILE: '/nonexistent/cqrs-sync-ca.pem',
        }),
      /KAFKA_SSL_CA_FILE \(\/nonexistent\/cqrs-sync-ca.pem\) cannot be read: ENOENT/,
    );
  });

  it('keeps the password out of every log line', () => {
    let out = '';
    const log = createLogger('info', { write: (s: string) => void (out += s) });
    const config = loadRelayConfig({ ...env, ...sasl });
    log.info({ config, sasl: config.kafkaSasl }, 'starting');
    log.info(kafkaClientOptions(config, 'x'), 'client');
    expect(out).toMatch(/svc/);
    expect(out).not.toMatch(/hunter2/);
  });
});
