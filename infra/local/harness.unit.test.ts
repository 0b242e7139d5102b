import { describe, expect, it } from '@jest/globals';
import { loadHarnessConfig } from './config.js';
import { HarnessError, isHarnessError } from './errors.js';
import { lastLines } from './logs.js';
import { redact } from './stack.js';
import { requireTools, which } from './tools.js';

describe('harness config', () => {
  it('defaults to auto mode, a cache under the repo, and no given servers', () => {
    const c = loadHarnessConfig({ PATH: '/usr/bin' });
    expect(c.mode).toBe('auto');
    expect(c.cacheDir).toMatch(/\.cache\/servers$/);
    expect(c.given.kafkaBrokers).toBeUndefined();
    expect(c.mongodDownload).toBe(false);
    expect(c.startTimeoutMs).toBe(180_000);
  });

  it('reads env URLs, fixed ports and flags', () => {
    const c = loadHarnessConfig({
      KAFKA_BROKERS: '127.0.0.1:9092',
      MYSQL_URL: 'mysql://u:p@127.0.0.1:3306/db',
      MONGODB_URI: 'mongodb://127.0.0.1:27017/?replicaSet=rs0',
      CQRS_SYNC_KAFKA_PORT: '19092',
      MONGOD_DOWNLOAD: '1',
      CQRS_SYNC_SERVERS: 'local',
    });
    expect(c.given.kafkaBrokers).toBe('127.0.0.1:9092');
    expect(c.given.mysqlSinkUrl).toBe('mysql://u:p@127.0.0.1:3306/db');
    expect(c.ports.kafka).toBe(19092);
    expect(c.mongodDownload).toBe(true);
    expect(c.mode).toBe('local');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('rejects bad values with a typed error that names each variable', () => {
    const attempt = () =>
      loadHarnessConfig({
        CQRS_SYNC_SERVERS: 'kubernetes',
        MYSQL_URL: 'postgres://x',
        CQRS_SYNC_MYSQL_PORT: '70000',
      });
    expect(attempt).toThrow(HarnessError);
    try {
      attempt();
    } catch (e) {
      expect(isHarnessError(e, 'bad_config')).toBe(true);
      const msg = (e as Error).message;
      expect(msg).toContain('CQRS_SYNC_SERVERS');
      expect(msg).toContain('MYSQL_URL: must start with mysql://');
      expect(msg).toContain('CQRS_SYNC_MYSQL_PORT');
      expect(msg).toContain('fix:');
    }
  });
});

describe('HarnessError', () => {
  it('says the server, the fix, the log file and its last lines', () => {
    const e = new HarnessError('start_timeout', 'not ready within 10 ms', {
      server: 'kafka',
      retriable: true,
      advice: 'raise the timeout',
      logFile: '/tmp/kafka.log',
      logTail: ['line 1', 'line 2'],
    });
    expect(e.message).toBe(
      [
        '[kafka] not ready within 10 ms',
        '  fix: raise the timeout',
        '  log: /tmp/kafka.log',
        '  last 2 log lines:',
        '    | line 1',
        '    | line 2',
      ].join('\n'),
    );
    expect(e.retriable).toBe(true);
    expect(isHarnessError(e)).toBe(true);
    expect(isHarnessError(e, 'port_in_use')).toBe(false);
    expect(isHarnessError(new Error('x'))).toBe(false);
    expect(isHarnessError(null)).toBe(false);
  });
});

describe('helpers', () => {
  it('keeps the last non-empty lines', () => {
    expect(lastLines('a\n\nb\r\nc\n', 2)).toEqual(['b', 'c']);
    expect(lastLines('', 5)).toEqual([]);
  });

  it('hides passwords in URLs', () => {
    expect(redact('mysql://cqrs_sink:s3cret@127.0.0.1:3306/db')).toBe(
      'mysql://cqrs_sink:***@127.0.0.1:3306/db',
    );
    expect(redact('mysql://127.0.0.1/db')).toBe('mysql://127.0.0.1/db');
  });

  it('finds executables on PATH and explains a missing one', () => {
    expect(which('sh', '/bin:/usr/bin')).toMatch(/\/sh$/);
    expect(which('/bin/sh', '')).toBe('/bin/sh');
    expect(which('/nonexistent/tool', '')).toBeUndefined();
    expect(() =>
      requireTools('kafka', [{ cmd: 'no-such-java', advice: 'install a JDK' }], '/nonexistent'),
    ).toThrow(/\[kafka\] `no-such-java` is not installed\n {2}fix: install a JDK/);
  });
});
