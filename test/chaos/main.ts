/**
 * `npm run chaos [-- --commands 100000 --aggregates 1000 --kills 50 --seed 1]`: the full chaos run on
 * servers of its own (it restarts them); `--kills` counts writer, relay and sink kills together.
 * Last line:
 * `chaos: commands=<n> kills=<n> restarts=<n> lost=<n> duplicated=<n> reordered=<n> checksum=<match|MISMATCH>`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadHarnessConfig } from '../../infra/local/config.js';
import { startStack } from '../../infra/local/stack.js';
import { chaosLine, runChaos } from './chaos.js';

const { values } = parseArgs({
  options: {
    commands: { type: 'string', default: '100000' },
    aggregates: { type: 'string', default: '1000' },
    kills: { type: 'string', default: '50' },
    'broker-restarts': { type: 'string', default: '2' },
    'mysql-restarts': { type: 'string', default: '2' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
  },
});
const num = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isSafeInteger(n) || n < 0) {
    process.stderr.write(`--${name} must be a whole number, got "${values[name]}"\n`);
    process.exit(2);
  }
  return n;
};
const say = (line: string): void => void process.stdout.write(`${line}\n`);

// Servers of its own, always local: restarting servers someone else gave us is not ours to do.
const env = Object.fromEntries(
  Object.entries(process.env).filter(
    ([k]) => !['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'MYSQL_URL', 'MYSQL_SINK_URL'].includes(k),
  ),
);
const stack = await startStack({
  config: loadHarnessConfig({
    ...env,
    CQRS_SYNC_SERVERS: 'local',
    CQRS_SYNC_RUN_DIR: mkdtempSync(path.join(tmpdir(), 'cqrs-chaos-')),
  }),
  log: say,
});
let code = 1;
try {
  for (const line of stack.lines()) say(line);
  const mongoKind = stack.env.CQRS_SYNC_MONGO_KIND === 'real' ? 'real' : 'stand-in';
  say(
    mongoKind === 'stand-in'
      ? 'MongoDB: the mongo-java-server stand-in (the write side is the same single-document writes as on mongod; the stand-in keeps nothing over a restart, so MongoDB is not restarted)'
      : 'MongoDB: a real mongod (restarted once during the run when the harness started it)',
  );
  const seed = num('seed');
  say(`seed ${seed} (repeat with --seed ${seed})`);
  const result = await runChaos(
    {
      kafkaBrokers: (stack.env.KAFKA_BROKERS ?? '').split(','),
      schemaRegistryUrl: stack.env.SCHEMA_REGISTRY_URL ?? '',
      mysqlUrl: stack.env.MYSQL_URL ?? '',
      mysqlSinkUrl: stack.env.MYSQL_SINK_URL ?? '',
      mongodbUri: stack.env.MONGODB_URI ?? '',
      mongoKind,
      ...(stack.get('kafka') ? { kafka: stack.get('kafka') } : {}),
      ...(stack.get('mysql') ? { mysql: stack.get('mysql') } : {}),
      ...(stack.get('mongodb') ? { mongodb: stack.get('mongodb') } : {}),
    },
    {
      commands: num('commands'),
      aggregates: num('aggregates'),
      kills: num('kills'),
      brokerRestarts: num('broker-restarts'),
      mysqlRestarts: num('mysql-restarts'),
      seed,
      quietTimeoutMs: 600_000,
      log: say,
    },
  );
  for (const m of result.mismatches) say(m);
  say(
    `events=${result.events} refused=${result.refused} seconds=${result.seconds} kills: writer=${result.killsBy.writer} relay=${result.killsBy.relay} sink=${result.killsBy.sink} (kills= counts all three)`,
  );
  if (result.pendingAtCheck > 0) {
    say(
      `NOT QUIET: ${result.pendingAtCheck} outbox entries (in aggregate documents) were still pending when the check ran (the relay was behind), so "lost" counts events not applied yet, and the checksum compares an unfinished read model.`,
    );
  }
  say(chaosLine(result));
  code =
    result.lost === 0 &&
    result.duplicated === 0 &&
    result.reordered === 0 &&
    result.checksum === 'match'
      ? 0
      : 1;
} finally {
  await stack.stop();
}
process.exit(code);
