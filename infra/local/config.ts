import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { HarnessError } from './errors.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const port = z.coerce.number().int().min(1).max(65535);
const flag = z
  .enum(['0', '1', 'true', 'false'])
  .transform((v) => v === '1' || v === 'true')
  .optional();

/**
 * Every environment variable the harness reads, with its default:
 * - `CQRS_SYNC_SERVERS`: `auto` (Docker via testcontainers when an engine answers, else local), `local`, `docker`.
 * - `CQRS_SYNC_CACHE`: installs (Maven artifacts, compiled launchers); default `.cache/servers`.
 * - `CQRS_SYNC_RUN_DIR`: data and logs of this run; default `.cache/run/<time>-<pid>`.
 * - `CQRS_SYNC_KEEP_RUNS`: how many finished runs' folders `.cache/run` keeps, default 3; older ones
 *   are deleted when a stack starts. A folder whose process still runs is never deleted, and with
 *   `CQRS_SYNC_RUN_DIR` set nothing is.
 * - `CQRS_SYNC_STANDIN_OPLOG_KEEP_MS`: the stand-in's oplog keeps this much history, default 30000
 *   (0: all of it). A real mongod's oplog is capped; the stand-in's never shrinks, and every
 *   change-stream `getMore` scans all of it, so the harness deletes older entries every 2 s.
 * - `CQRS_SYNC_START_TIMEOUT_MS`: per server start-up, default 180000 (a cold JVM on 2 busy cores).
 * - `CQRS_SYNC_INSTALL_TIMEOUT_MS`: per install step, default 900000 (a cold Maven download).
 * - `KAFKA_BROKERS`, `SCHEMA_REGISTRY_URL`, `MYSQL_URL`, `MONGODB_URI`: use these servers instead.
 * - `MYSQL_SINK_URL`: the sink's least-privilege account, when `MYSQL_URL` is given (default: `MYSQL_URL`).
 * - `MONGOD_BIN`: a real `mongod` to run (else `mongod` on PATH).
 * - `MONGOD_DOWNLOAD`: `1` lets mongodb-memory-server download a real mongod (needs the internet).
 * - `DOCKER_HOST`: a Docker engine for `auto`/`docker` (else /var/run/docker.sock).
 * - `CQRS_SYNC_{KAFKA,SCHEMA_REGISTRY,MYSQL,MONGODB}_PORT`: fixed ports instead of free ones.
 */
const schema = z.object({
  CQRS_SYNC_SERVERS: z.enum(['auto', 'local', 'docker']).default('auto'),
  CQRS_SYNC_CACHE: z.string().min(1).optional(),
  CQRS_SYNC_RUN_DIR: z.string().min(1).optional(),
  CQRS_SYNC_KEEP_RUNS: z.coerce.number().int().min(0).default(3),
  CQRS_SYNC_STANDIN_OPLOG_KEEP_MS: z.coerce.number().int().min(0).default(30_000),
  CQRS_SYNC_START_TIMEOUT_MS: z.coerce.number().int().positive().default(180_000),
  CQRS_SYNC_INSTALL_TIMEOUT_MS: z.coerce.number().int().positive().default(900_000),
  KAFKA_BROKERS: z.string().min(1).optional(),
  SCHEMA_REGISTRY_URL: z.url().optional(),
  MYSQL_URL: z
    .string()
    .regex(/^mysql:\/\//, 'must start with mysql://')
    .optional(),
  MYSQL_SINK_URL: z
    .string()
    .regex(/^mysql:\/\//, 'must start with mysql://')
    .optional(),
  MONGODB_URI: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb://')
    .optional(),
  MONGOD_BIN: z.string().min(1).optional(),
  MONGOD_DOWNLOAD: flag,
  CQRS_SYNC_KAFKA_PORT: port.optional(),
  CQRS_SYNC_SCHEMA_REGISTRY_PORT: port.optional(),
  CQRS_SYNC_MYSQL_PORT: port.optional(),
  CQRS_SYNC_MONGODB_PORT: port.optional(),
  DOCKER_HOST: z.string().min(1).optional(),
  PATH: z.string().default('/usr/local/bin:/usr/bin:/bin'),
});

export interface HarnessConfig {
  readonly mode: 'auto' | 'local' | 'docker';
  readonly cacheDir: string;
  readonly runDir: string;
  /** Where the default run folders are (`.cache/run`), to prune; undefined with `CQRS_SYNC_RUN_DIR`. */
  readonly runsDir: string | undefined;
  /** Finished runs' folders that pruning keeps. */
  readonly keepRuns: number;
  /** History the stand-in's oplog keeps (ms); 0 keeps all. */
  readonly standInOplogKeepMs: number;
  readonly startTimeoutMs: number;
  readonly installTimeoutMs: number;
  readonly stopGraceMs: number;
  readonly pathEnv: string;
  readonly dockerHost: string | undefined;
  readonly given: {
    readonly kafkaBrokers: string | undefined;
    readonly schemaRegistryUrl: string | undefined;
    readonly mysqlUrl: string | undefined;
    readonly mysqlSinkUrl: string | undefined;
    readonly mongodbUri: string | undefined;
  };
  readonly mongodBin: string | undefined;
  readonly mongodDownload: boolean;
  readonly ports: {
    readonly kafka: number | undefined;
    readonly schemaRegistry: number | undefined;
    readonly mysql: number | undefined;
    readonly mongodb: number | undefined;
  };
}

export function loadHarnessConfig(env: NodeJS.ProcessEnv = process.env): HarnessConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new HarnessError('bad_config', `invalid environment: ${problems.join('; ')}`, {
      server: 'harness',
      retriable: false,
      advice: 'fix or unset the variables named above (see infra/local/config.ts for each one)',
    });
  }
  const e = parsed.data;
  const cacheDir = path.resolve(e.CQRS_SYNC_CACHE ?? path.join(REPO_ROOT, '.cache', 'servers'));
  const runsDir = path.join(REPO_ROOT, '.cache', 'run');
  const runDir = path.resolve(
    e.CQRS_SYNC_RUN_DIR ?? path.join(runsDir, runDirName(new Date(), process.pid)),
  );
  return Object.freeze({
    mode: e.CQRS_SYNC_SERVERS,
    cacheDir,
    runDir,
    runsDir: e.CQRS_SYNC_RUN_DIR === undefined ? runsDir : undefined,
    keepRuns: e.CQRS_SYNC_KEEP_RUNS,
    standInOplogKeepMs: e.CQRS_SYNC_STANDIN_OPLOG_KEEP_MS,
    startTimeoutMs: e.CQRS_SYNC_START_TIMEOUT_MS,
    installTimeoutMs: e.CQRS_SYNC_INSTALL_TIMEOUT_MS,
    stopGraceMs: 15_000,
    pathEnv: e.PATH,
    dockerHost: e.DOCKER_HOST,
    given: {
      kafkaBrokers: e.KAFKA_BROKERS,
      schemaRegistryUrl: e.SCHEMA_REGISTRY_URL,
      mysqlUrl: e.MYSQL_URL,
      mysqlSinkUrl: e.MYSQL_SINK_URL ?? e.MYSQL_URL,
      mongodbUri: e.MONGODB_URI,
    },
    mongodBin: e.MONGOD_BIN,
    mongodDownload: e.MONGOD_DOWNLOAD ?? false,
    ports: {
      kafka: e.CQRS_SYNC_KAFKA_PORT,
      schemaRegistry: e.CQRS_SYNC_SCHEMA_REGISTRY_PORT,
      mysql: e.CQRS_SYNC_MYSQL_PORT,
      mongodb: e.CQRS_SYNC_MONGODB_PORT,
    },
  });
}

/** A default run folder's name: the start time, then the pid of the process that owns it. */
export function runDirName(at: Date, pid: number): string {
  return `${at.toISOString().replace(/[:.]/g, '-')}-${pid}`;
}

const RUN_DIR_NAME = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z-(\d+)$/;

/**
 * Which run folders (names from `runDirName`) to delete: all but the `keep` newest of those whose
 * process is gone. A folder whose process is `alive` is never chosen (it may be in use: a pid reused
 * since only keeps a folder longer), nor is any other name.
 */
export function runDirsToPrune(
  names: readonly string[],
  keep: number,
  alive: (pid: number) => boolean,
): string[] {
  const finished = names
    .filter((name) => {
      const pid = RUN_DIR_NAME.exec(name)?.[1];
      return pid !== undefined && !alive(Number(pid));
    })
    // The names start with a fixed-width UTC time: newest first is reverse name order.
    .sort()
    .reverse();
  return finished.slice(keep);
}
