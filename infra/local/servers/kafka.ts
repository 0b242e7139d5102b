import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { LocalServer } from '../local-server.js';
import { choosePort, freePort } from '../ports.js';
import type { ServerContext } from '../types.js';
import { installJavaServer, scriptsDir } from './java-server.js';

/** One Apache Kafka node in KRaft mode (broker and controller), standing in for Redpanda. */
export async function startKafka(ctx: ServerContext): Promise<LocalServer> {
  const version = await installJavaServer(ctx, 'kafka', 'kafka');
  const port = await choosePort('kafka', ctx.config.ports.kafka);
  const controllerPort = await freePort();
  const base = path.join(ctx.config.runDir, 'kafka');
  const brokers = `127.0.0.1:${port}`;
  const spec = () => ({
    server: 'kafka',
    command: 'bash',
    args: [path.join(scriptsDir('kafka'), 'run.sh')],
    env: {
      PORT: String(port),
      CONTROLLER_PORT: String(controllerPort),
      DATA_DIR: base,
      CQRS_SYNC_CACHE: ctx.config.cacheDir,
    },
    logFile: path.join(base, 'kafka.log'),
    startTimeoutMs: ctx.config.startTimeoutMs,
    stopGraceMs: ctx.config.stopGraceMs,
    ready: () => kafkaReady(brokers),
  });
  return LocalServer.launch('kafka', spec, ctx.config.stopGraceMs, () =>
    Promise.resolve({
      description: `Apache Kafka ${version} (local KRaft, ${brokers})`,
      env: { KAFKA_BROKERS: brokers },
    }),
  );
}

/** Ready when the broker answers metadata and has a controller, i.e. can create topics. */
export async function kafkaReady(brokers: string): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'cqrs-sync-harness',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 2000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } finally {
    await admin.disconnect();
  }
}
