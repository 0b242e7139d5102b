/**
 * `npm run demo` (demo/main.ts) as a user runs it, in a child process: what the terminal shows, how
 * it refuses a taken DEMO_PORT, and how Ctrl-C ends it. The child adopts this run's Kafka, schema
 * registry and MySQL (a database of its own) but starts its own MongoDB, so that it runs a server of
 * its own and with it the harness's watchdog.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createTestDatabase, type TestDatabase } from '../sink/testing.js';
import { testServers, uniqueName, waitFor } from '../test/support/servers.js';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const ROOT = path.resolve(path.dirname(MAIN), '..');
// The child must not adopt this run's MongoDB, nor download one.
const DROPPED = [
  'MONGODB_URI',
  'CQRS_SYNC_MONGO_KIND',
  'MONGOD_DOWNLOAD',
  'DEMO_PORT',
  'DEMO_HOST',
];

interface Demo {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let db: TestDatabase | undefined;
const runDirs: string[] = [];

beforeAll(async () => {
  const s = testServers();
  db = await createTestDatabase(s.mysqlUrl, s.mysqlSinkUrl, uniqueName('demo_main'), []);
}, 60_000);

afterAll(async () => {
  await db?.drop();
  for (const d of runDirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

function startDemo(env: Record<string, string>): Demo {
  const d = db;
  if (!d) throw new Error('the test database was not created (see beforeAll)');
  const s = testServers();
  const name = uniqueName('demo_main');
  const runDir = mkdtempSync(path.join(tmpdir(), 'cqrs-sync-demo-main-'));
  runDirs.push(runDir);
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    cwd: ROOT,
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !DROPPED.includes(k))),
      CQRS_SYNC_SERVERS: 'local',
      CQRS_SYNC_RUN_DIR: runDir,
      KAFKA_BROKERS: s.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: s.schemaRegistryUrl,
      MYSQL_URL: d.adminUrl,
      MYSQL_SINK_URL: d.sinkUrl,
      RELAY_OUTBOX_DATABASE: name,
      SINK_GROUP_ID: name,
      SINK_DLT_TOPIC: `${name}.dlt`,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Live processes whose parent is `ppid` and whose command line mentions `script` (Linux /proc). */
function childrenRunning(ppid: number, script: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces, so split after its closing parenthesis.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent !== ppid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(script))
        found.push(Number(entry));
    } catch {
      // It exited while we looked.
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function occupiedPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (typeof addr !== 'object' || !addr) throw new Error('no address');
  return {
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  };
}

// Reported: with port 3000 taken, `npm run demo` failed only after ~23 s (every server started
// first) with a raw EADDRINUSE stack that did not mention DEMO_PORT.
it('refuses a taken DEMO_PORT at once, before starting any server, and says how to choose another', async () => {
  const taken = await occupiedPort();
  try {
    const started = Date.now();
    const demo = startDemo({ DEMO_PORT: String(taken.port) });
    const exit = await demo.exit;
    const out = demo.stdout() + demo.stderr();
    expect(exit).toEqual({ code: 1, signal: null });
    expect(out).toContain(`DEMO_PORT=${taken.port}`);
    expect(out).toMatch(/already in use/);
    expect(out).toMatch(/DEMO_PORT=0/);
    expect(out).not.toContain('starting local servers');
    expect(out).not.toMatch(/\n\s+at /); // no stack trace
    // Only node and tsx starting up: no server was started.
    expect(Date.now() - started).toBeLessThan(15_000);
  } finally {
    await taken.close();
  }
}, 60_000);

// Reported: every start printed 3-6 raw JSON kafkajs error lines ("This server does not host this
// topic-partition"); Ctrl-C left the harness's watchdog running ~3 s after the prompt came back.
it('starts with only its own lines in the terminal; on SIGINT stops, exits 0 and leaves no watchdog', async () => {
  const demo = startDemo({ DEMO_PORT: '0' });
  let watchdogs: number[] = [];
  try {
    await waitFor(
      'the demo to say it is running',
      () => {
        if (demo.child.exitCode !== null) {
          throw new Error(`the demo exited early:\n${demo.stdout()}\n${demo.stderr()}`);
        }
        return demo.stdout().includes('Ctrl-C stops everything.');
      },
      { timeoutMs: 240_000, intervalMs: 250 },
    );
    watchdogs = childrenRunning(demo.child.pid ?? -1, 'watchdog.cjs');
    expect(watchdogs).toHaveLength(1);
    expect(demo.stdout()).toMatch(/demo: {4}http:\/\/127\.0\.0\.1:\d+\//);
    // Which MongoDB it is, said plainly in the servers list, and no "unsafe" warning: every
    // MongoDB gets the same atomic single-document write.
    expect(demo.stdout()).toMatch(
      /^ {2}mongodb: (mongo-java-server \S+ \(stand-in|MongoDB \S+ \(real mongod)/m,
    );
    expect(demo.stdout()).not.toMatch(/unsafe|WARNING/i);
    expect(demo.stdout()).toMatch(/relay: in this process .*outbox inside the aggregate documents/);
    // The consumer group's coordinator, the DLT topic's metadata: transient answers kafkajs logs at
    // error while it retries. They belong in demo.log, not in the terminal.
    expect(demo.stderr()).toBe('');

    demo.child.kill('SIGINT');
    expect(await demo.exit).toEqual({ code: 0, signal: null });
    expect(demo.stdout()).toContain('demo stopped');
    expect(demo.stderr()).toBe('');
    // Gone with the stack, not seconds after the demo.
    await waitFor('the watchdog to exit', () => watchdogs.filter(alive).length === 0, {
      timeoutMs: 1_000,
      intervalMs: 50,
    });
  } finally {
    // A kill -9 leaves the servers to the watchdog, which reaps them.
    if (demo.child.exitCode === null) demo.child.kill('SIGKILL');
  }
}, 300_000);
