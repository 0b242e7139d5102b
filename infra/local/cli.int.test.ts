import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { waitFor } from '../../test/support/servers.js';

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url));
const CLIENT_VARS = [
  'KAFKA_BROKERS',
  'SCHEMA_REGISTRY_URL',
  'MYSQL_URL',
  'MYSQL_SINK_URL',
  'MONGODB_URI',
  'CQRS_SYNC_MONGO_KIND',
];

interface Running {
  child: ChildProcess;
  pids: number[];
  output: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `npm run servers -- --only <name> --json` in a child process, on its own run directory, with
 * none of this run's server variables (so it starts its own servers rather than adopting ours). */
async function startCli(only: string): Promise<Running> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !CLIENT_VARS.includes(k)),
  );
  env.CQRS_SYNC_SERVERS = 'local';
  env.CQRS_SYNC_RUN_DIR = mkdtempSync(path.join(tmpdir(), `cqrs-cli-${only}-`));
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, '--only', only, '--json'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
  let pids: number[] | undefined;
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on('line', (line) => {
    output.push(line);
    if (line.startsWith('{"ready":true')) pids = (JSON.parse(line) as { pids: number[] }).pids;
  });
  child.stderr.on('data', (d: Buffer) => output.push(d.toString()));
  const ready = await waitFor(
    `${only} ready in the CLI`,
    () => pids ?? (child.exitCode !== null ? 'exited' : undefined),
    {
      timeoutMs: 120_000,
    },
  );
  if (ready === 'exited') throw new Error(`CLI exited before ready:\n${output.join('\n')}`);
  return { child, pids: ready, output, exit };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm run servers (child process)', () => {
  it('stops its servers and exits 0 on SIGTERM', async () => {
    const run = await startCli('mysql');
    expect(run.output.some((l) => l.startsWith('mysql: MariaDB '))).toBe(true);
    expect(run.pids.length).toBeGreaterThan(0);
    expect(run.pids.every(alive)).toBe(true);
    run.child.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 0, signal: null });
    expect(run.output).toContain('servers stopped');
    expect(run.pids.filter(alive)).toEqual([]);
  });

  it('stops its servers and exits 0 on SIGINT (Ctrl-C)', async () => {
    const run = await startCli('mongodb');
    expect(run.output.some((l) => l.startsWith('mongodb: '))).toBe(true);
    run.child.kill('SIGINT');
    expect(await run.exit).toEqual({ code: 0, signal: null });
    expect(run.pids.filter(alive)).toEqual([]);
  });

  it('leaves no server behind when it is killed with kill -9 (the watchdog reaps them)', async () => {
    const run = await startCli('mysql');
    run.child.kill('SIGKILL');
    await run.exit;
    await waitFor('the orphaned server to be reaped', () => run.pids.filter(alive).length === 0, {
      timeoutMs: 15_000,
    });
  });
});
