import { describe, expect, it } from '@jest/globals';
import { checkSinkConfig, loadSinkConfig } from './config.js';

describe('sink configuration', () => {
  const env = {
    KAFKA_BROKERS: 'a:1,b:2',
    SCHEMA_REGISTRY_URL: 'http://r',
    MYSQL_URL: 'mysql://u@h/db',
  };
  it('reads defaults and refuses bad values with advice', () => {
    const c = loadSinkConfig(env);
    expect(c).toMatchObject({
      kafkaBrokers: ['a:1', 'b:2'],
      mysqlUrl: 'mysql://u@h/db',
      groupId: 'cqrs-sync-sink',
      batchSize: 500,
      gapTimeoutMs: 60_000,
    });
    expect(() => loadSinkConfig({})).toThrow(/KAFKA_BROKERS/);
    expect(() => loadSinkConfig({ ...env, SINK_HEARTBEAT_INTERVAL_MS: '20000' })).toThrow(
      /about 3000/,
    );
    expect(() =>
      loadSinkConfig({ ...env, SINK_RETRY_INITIAL_MS: '9', SINK_RETRY_MAX_MS: '5' }),
    ).toThrow(/RETRY/);
  });

  it('limits closing after the grace period: SINK_STOP_FORCE_MS, 10 s unless set', () => {
    expect(loadSinkConfig(env).stopForceMs).toBe(10_000);
    expect(loadSinkConfig({ ...env, SINK_STOP_FORCE_MS: '2500' }).stopForceMs).toBe(2500);
    for (const bad of ['0', '-1', 'soon']) {
      expect(() => loadSinkConfig({ ...env, SINK_STOP_FORCE_MS: bad })).toThrow(
        /SINK_STOP_FORCE_MS/,
      );
    }
  });

  it('commits the Kafka offset hint every SINK_KAFKA_COMMIT_INTERVAL_MS, 1 s unless set', () => {
    expect(loadSinkConfig(env).kafkaCommitIntervalMs).toBe(1000);
    expect(
      loadSinkConfig({ ...env, SINK_KAFKA_COMMIT_INTERVAL_MS: '250' }).kafkaCommitIntervalMs,
    ).toBe(250);
    expect(() => loadSinkConfig({ ...env, SINK_KAFKA_COMMIT_INTERVAL_MS: '0' })).toThrow(
      /SINK_KAFKA_COMMIT_INTERVAL_MS/,
    );
  });

  it('names what the relay also has as the relay does; checks configs built in code too', () => {
    const c = loadSinkConfig({ ...env, LOG_LEVEL: 'debug' });
    expect(c).toMatchObject({
      logLevel: 'debug',
      stopGraceMs: 30_000,
      retryInitialMs: 200,
      retryMaxMs: 30_000,
      retryFactor: 2,
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(() => checkSinkConfig({ ...c, heartbeatIntervalMs: c.sessionTimeoutMs })).toThrow(
      /at most a third/,
    );
  });
});
