/**
 * Servers as containers, for machines with a Docker engine (users' laptops, most CI): Redpanda with
 * its schema registry, MongoDB as a one-node replica set, MySQL 8. Each container port is published
 * on the same host port, chosen free beforehand, so the addresses the servers advertise are the ones
 * clients dial.
 *
 * Not exercised on the project's own CI machine, which has no Docker engine.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import {
  GenericContainer,
  Wait,
  getContainerRuntimeClient,
  type StartedTestContainer,
} from 'testcontainers';
import { freePort } from './ports.js';
import { ADMIN_USER, READ_DB, SINK_USER, provision } from './servers/mariadb.js';
import { initiateReplicaSet, probeMongo, type MongoHandle } from './servers/mongodb.js';
import type { ServerContext, ServerHandle, ServerName } from './types.js';

export const IMAGES = {
  redpanda: 'docker.redpanda.com/redpandadata/redpanda:v24.2.7',
  mongo: 'mongo:7.0',
  mysql: 'mysql:8.4',
} as const;

export async function dockerAvailable(): Promise<boolean> {
  try {
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

function containerHandle(
  name: ServerName,
  c: StartedTestContainer,
  description: string,
  env: Record<string, string>,
): ServerHandle {
  let stopping: Promise<unknown> | undefined;
  return {
    name,
    origin: 'docker',
    description,
    env,
    pids: () => [],
    stop: async () => {
      stopping ??= c.stop({ timeout: 10_000 });
      await stopping;
    },
    restart: () => c.restart(),
  };
}

export async function startDockerServers(
  ctx: ServerContext,
  wanted: readonly ServerName[],
): Promise<ServerHandle[]> {
  const out: ServerHandle[] = [];
  if (wanted.includes('kafka') || wanted.includes('schema-registry')) {
    const kafkaPort = await freePort();
    const srPort = await freePort();
    const c = await new GenericContainer(IMAGES.redpanda)
      .withExposedPorts(
        { container: kafkaPort, host: kafkaPort },
        { container: 8081, host: srPort },
      )
      .withCommand([
        'redpanda',
        'start',
        '--mode',
        'dev-container',
        '--smp',
        '1',
        '--kafka-addr',
        `PLAINTEXT://0.0.0.0:${kafkaPort}`,
        '--advertise-kafka-addr',
        `PLAINTEXT://127.0.0.1:${kafkaPort}`,
        '--schema-registry-addr',
        '0.0.0.0:8081',
      ])
      .withWaitStrategy(Wait.forLogMessage(/Successfully started Redpanda/))
      .start();
    out.push(
      containerHandle('kafka', c, `Redpanda (${IMAGES.redpanda}, docker, 127.0.0.1:${kafkaPort})`, {
        KAFKA_BROKERS: `127.0.0.1:${kafkaPort}`,
      }),
    );
    out.push({
      ...containerHandle('schema-registry', c, `Redpanda schema registry (docker)`, {
        SCHEMA_REGISTRY_URL: `http://127.0.0.1:${srPort}`,
      }),
      // The registry lives in the Redpanda container, which the kafka handle stops.
      stop: () => Promise.resolve(),
    });
  }
  if (wanted.includes('mongodb')) {
    const port = await freePort();
    const c = await new GenericContainer(IMAGES.mongo)
      .withExposedPorts({ container: port, host: port })
      .withCommand(['--replSet', 'rs0', '--bind_ip_all', '--port', String(port)])
      .withWaitStrategy(Wait.forLogMessage(/Waiting for connections/))
      .start();
    await initiateReplicaSet(`mongodb://127.0.0.1:${port}/?directConnection=true`, port, 60_000);
    const uri = `mongodb://127.0.0.1:${port}/?replicaSet=rs0`;
    const caps = await probeMongo(uri);
    const handle: MongoHandle = {
      ...containerHandle('mongodb', c, `MongoDB ${caps.version} (real, ${IMAGES.mongo}, docker)`, {
        MONGODB_URI: uri,
        CQRS_SYNC_MONGO_KIND: 'real',
      }),
      kind: 'real',
      capabilities: caps,
    };
    out.push(handle);
  }
  if (wanted.includes('mysql')) {
    const port = await freePort();
    const rootPassword = 'root-test-only';
    const c = await new GenericContainer(IMAGES.mysql)
      .withExposedPorts({ container: 3306, host: port })
      .withEnvironment({ MYSQL_ROOT_PASSWORD: rootPassword })
      .withWaitStrategy(Wait.forLogMessage(/ready for connections.*port: 3306/))
      .start();
    const dir = path.join(ctx.config.runDir, 'mysql-docker');
    mkdirSync(dir, { recursive: true });
    const accounts = await provision(
      () =>
        mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: rootPassword }),
      path.join(dir, 'accounts.json'),
      '%',
    );
    const at = `127.0.0.1:${port}`;
    out.push(
      containerHandle('mysql', c, `MySQL 8 (${IMAGES.mysql}, docker, ${at})`, {
        MYSQL_URL: `mysql://${ADMIN_USER}:${accounts.admin}@${at}/${READ_DB}`,
        MYSQL_SINK_URL: `mysql://${SINK_USER}:${accounts.sink}@${at}/${READ_DB}`,
      }),
    );
  }
  return out;
}
