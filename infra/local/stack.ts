import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { loadHarnessConfig, runDirsToPrune, type HarnessConfig } from './config.js';
import { HarnessError } from './errors.js';
import { watchdogsRetired } from './process.js';
import { kafkaReady, startKafka } from './servers/kafka.js';
import { startMariaDb } from './servers/mariadb.js';
import { startMongo, type MongoHandle } from './servers/mongodb.js';
import { startSchemaRegistry } from './servers/schema-registry.js';
import { SERVER_NAMES, type ServerContext, type ServerHandle, type ServerName } from './types.js';

export interface Stack {
  readonly config: HarnessConfig;
  readonly servers: readonly ServerHandle[];
  /** Every client variable: KAFKA_BROKERS, SCHEMA_REGISTRY_URL, MYSQL_URL, MYSQL_SINK_URL, MONGODB_URI… */
  readonly env: Readonly<Record<string, string>>;
  readonly mongo: MongoHandle | undefined;
  get(name: ServerName): ServerHandle | undefined;
  /** One line a server: `kafka: Apache Kafka 3.9.1 (local KRaft, 127.0.0.1:40123)`. */
  lines(): string[];
  /** Idempotent; stops in reverse start order. */
  stop(): Promise<void>;
}

export interface StackOptions {
  readonly only?: readonly ServerName[];
  readonly config?: HarnessConfig;
  readonly log?: (line: string) => void;
}

/**
 * Starts (or adopts, from env URLs) every server a run needs. Installs run one after another (they
 * share Maven's local repository), start-ups run side by side. If any server fails, those already
 * up are stopped before the error is thrown.
 */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const config = opts.config ?? loadHarnessConfig();
  const ctx: ServerContext = { config, log: opts.log ?? (() => undefined) };
  if (config.runsDir) {
    const pruned = pruneRunDirs(config.runsDir, config.keepRuns);
    if (pruned.length > 0) {
      ctx.log(
        `deleted ${pruned.length} old run folder(s) under ${config.runsDir} (keeping the newest ${config.keepRuns}: CQRS_SYNC_KEEP_RUNS)`,
      );
    }
  }
  const wanted = opts.only ?? SERVER_NAMES;
  const mode = await resolveMode(config);
  const started: ServerHandle[] = [];
  try {
    if (mode === 'docker') {
      const { startDockerServers } = await import('./docker.js');
      started.push(...(await startDockerServers(ctx, wanted)));
    } else {
      const starters = wanted.map((name) => starterFor(name, ctx));
      const results = await Promise.allSettled(starters.map((s) => s()));
      for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
      const failures = results.flatMap((r) =>
        r.status === 'rejected' ? [r.reason as unknown] : [],
      );
      if (failures.length > 0) throw combine(failures);
    }
  } catch (e) {
    await Promise.allSettled(started.map((s) => s.stop()));
    throw e;
  }
  return makeStack(config, started);
}

function makeStack(config: HarnessConfig, servers: ServerHandle[]): Stack {
  const env: Record<string, string> = {};
  for (const s of servers) Object.assign(env, s.env);
  let stopping: Promise<void> | undefined;
  const mongo = servers.find((s) => s.name === 'mongodb') as MongoHandle | undefined;
  return {
    config,
    servers,
    env,
    mongo,
    get: (name) => servers.find((s) => s.name === name),
    lines: () => servers.map((s) => `${s.name}: ${s.description}`),
    stop: () => {
      stopping ??= (async () => {
        for (const s of [...servers].reverse()) await s.stop();
        // With no server left the watchdog exits; wait for it, so that it does not outlive us.
        await watchdogsRetired();
      })();
      return stopping;
    },
  };
}

/** Installs one at a time: a queue shared by the local starters. */
function starterFor(name: ServerName, ctx: ServerContext): () => Promise<ServerHandle> {
  const given = ctx.config.given;
  switch (name) {
    case 'kafka':
      return given.kafkaBrokers
        ? () => adoptKafka(given.kafkaBrokers ?? '')
        : () => serialInstall(() => startKafka(ctx));
    case 'schema-registry':
      return given.schemaRegistryUrl
        ? () => adoptHttp('schema-registry', 'SCHEMA_REGISTRY_URL', given.schemaRegistryUrl ?? '')
        : () => serialInstall(() => startSchemaRegistry(ctx));
    case 'mysql':
      return given.mysqlUrl
        ? () =>
            Promise.resolve(
              envHandle('mysql', `MySQL at ${redact(given.mysqlUrl ?? '')} from MYSQL_URL`, {
                MYSQL_URL: given.mysqlUrl ?? '',
                MYSQL_SINK_URL: given.mysqlSinkUrl ?? given.mysqlUrl ?? '',
              }),
            )
        : () => serialInstall(() => startMariaDb(ctx));
    case 'mongodb':
      return () => serialInstall(() => startMongo(ctx));
  }
}

// Installs (apt, Maven) must not overlap; the start-ups after them may.
let installChain: Promise<unknown> = Promise.resolve();
function serialInstall<T>(fn: () => Promise<T>): Promise<T> {
  const run = installChain.then(fn, fn);
  installChain = run.catch(() => undefined);
  return run;
}

async function adoptKafka(brokers: string): Promise<ServerHandle> {
  const ok = await kafkaReady(brokers).catch(() => false);
  if (!ok) {
    throw new HarnessError('start_timeout', `KAFKA_BROKERS=${brokers} does not answer`, {
      server: 'kafka',
      retriable: true,
      advice: 'start the broker, or unset KAFKA_BROKERS to let the harness run one',
    });
  }
  return envHandle('kafka', `Kafka-API broker at ${brokers} from KAFKA_BROKERS`, {
    KAFKA_BROKERS: brokers,
  });
}

async function adoptHttp(name: ServerName, variable: string, url: string): Promise<ServerHandle> {
  const res = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(5000) }).catch(
    (cause: unknown) => {
      throw new HarnessError('start_timeout', `${variable}=${url} does not answer`, {
        server: name,
        retriable: true,
        cause,
      });
    },
  );
  if (!res.ok) {
    throw new HarnessError(
      'setup_failed',
      `${variable}=${url} answered ${res.status} to /subjects`,
      {
        server: name,
        retriable: false,
        advice: 'give the Confluent-compatible base URL (for Apicurio: …/apis/ccompat/v7)',
      },
    );
  }
  return envHandle(name, `schema registry at ${url} from ${variable}`, { [variable]: url });
}

function envHandle(
  name: ServerName,
  description: string,
  env: Record<string, string>,
): ServerHandle {
  return { name, origin: 'env', description, env, pids: () => [], stop: () => Promise.resolve() };
}

/**
 * Deletes the folders of finished runs under `runsDir` beyond the newest `keep` (see
 * `runDirsToPrune`: never one whose process is alive). Returns the paths it deleted; a folder it
 * cannot delete (another process pruning too, permissions) is left for the next start.
 */
export function pruneRunDirs(
  runsDir: string,
  keep: number,
  alive: (pid: number) => boolean = processAlive,
): string[] {
  let names: string[];
  try {
    names = readdirSync(runsDir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return []; // No runs yet.
  }
  const deleted: string[] = [];
  for (const name of runDirsToPrune(names, keep, alive)) {
    const dir = path.join(runsDir, name);
    try {
      rmSync(dir, { recursive: true, force: true });
      deleted.push(dir);
    } catch {
      // Left for the next start.
    }
  }
  return deleted;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, as another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The client variables of these servers, for printing: those of servers this run started in full
 * (throwaway servers on loopback, their passwords random and deleted with the run folder; `npm run
 * servers` prints them too), those given by the environment with the password hidden.
 */
export function printableEnv(servers: readonly ServerHandle[]): [string, string][] {
  return servers.flatMap((s) =>
    Object.entries(s.env).map(([k, v]): [string, string] => [
      k,
      s.origin === 'env' ? redact(v) : v,
    ]),
  );
}

/** Hides the password of a URL for printing. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}

async function resolveMode(config: HarnessConfig): Promise<'local' | 'docker'> {
  if (config.mode !== 'auto') return config.mode;
  if (!existsSync('/var/run/docker.sock') && !config.dockerHost) return 'local';
  // Imported lazily: testcontainers is heavy and there is usually no engine.
  const { dockerAvailable } = await import('./docker.js');
  return (await dockerAvailable()) ? 'docker' : 'local';
}

function combine(failures: unknown[]): unknown {
  if (failures.length === 1) return failures[0];
  const first = failures[0];
  const rest = failures.slice(1).map((f) => (f instanceof Error ? f.message : String(f)));
  if (first instanceof Error) {
    first.message += `\n(also failed:)\n${rest.join('\n')}`;
  }
  return first;
}
