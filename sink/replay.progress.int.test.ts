import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { sinkCli } from './cli.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { shopWorkload, ShopHistory, testProjections } from './testing.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, 'fixtures', 'replay-child.ts');
let t: SinkTestEnv;
let total = 0;

beforeAll(async () => {
  t = await sinkTestEnv('replay_progress', { partitions: 2 });
  const events = shopWorkload(new ShopHistory(), 60, 'pg');
  total = events.length;
  await t.send(events);
});
afterAll(async () => {
  await t.close();
});

/** The replay CLI in a child process with pipes (not a terminal), logging at info. */
function replayChild(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, t.prefix, ...args], {
      env: { ...process.env, ...t.env, MYSQL_SINK_URL: t.db.sinkUrl, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) => {
      resolve({ code, out, err });
    });
  });
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');
const isJson = (l: string): boolean => l.trimStart().startsWith('{');

// Issue 17: nothing for ~12 s, then bars mixed with JSON logs, and a rate that counted the silent part.
it('announces its phases in order on stderr, keeps logs out of it, and rates only the applying phase', async () => {
  const r = await replayChild(['--to', 'earliest']);
  expect(r.code).toBe(0);
  const err = lines(r.err);
  expect(err.filter(isJson)).toEqual([]);
  const phases = err
    .map((l) => /^replay: (stopping|rewinding|applying|draining|swapping|done)\b/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined)
    .filter((p, i, all) => p !== all[i - 1]);
  expect(phases).toEqual(['stopping', 'rewinding', 'applying', 'draining', 'done']);
  expect(r.err).toContain(`${total}/${total} events (100%)`);
  // stdout: log records held to warn (LOG_LEVEL is info), then the summary with each phase's
  // duration and the applying rate.
  const out = lines(r.out);
  for (const l of out.filter(isJson))
    expect((JSON.parse(l) as { level: number }).level).toBeGreaterThanOrEqual(40);
  expect(out.filter((l) => !isJson(l))).toEqual([out.at(-1)]);
  const m =
    /^replayed (\d+) events in ([\d.]+) s \(stopping ([\d.]+) s, rewinding ([\d.]+) s, applying ([\d.]+) s, draining [\d.]+ s\); applying rate ([\d,]+) ev\/s$/.exec(
      out.at(-1) ?? '',
    );
  expect(m).not.toBeNull();
  const [, events, all, , , applying, rate] = (m ?? []).map((x) => Number(x.replace(/,/g, '')));
  expect(events).toBe(total);
  expect(applying).toBeLessThan(all ?? 0);
  // rate = applied / applying duration, within the rounding of the printed numbers.
  const [n = 0, secs = 0, r2 = 0] = [events, applying, rate];
  expect(r2).toBeGreaterThanOrEqual(Math.floor(n / (secs + 0.05)) - 1);
  expect(r2).toBeLessThanOrEqual(Math.ceil(n / Math.max(0.05, secs - 0.05)) + 1);
});

it('with --json prints the JSON summary alone on stdout, and --log-file takes the logs', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'replay-progress-'));
  const logFile = path.join(dir, 'replay.log');
  const r = await replayChild(['--to', 'earliest', '--shadow', '--json', '--log-file', logFile]);
  expect(r.code).toBe(0);
  const s = JSON.parse(r.out) as {
    events: number;
    swapped: boolean;
    totalMs: number;
    phaseMs: Record<string, number>;
    applyingEventsPerSecond: number;
  };
  expect(s).toMatchObject({ events: total, swapped: true });
  expect(Object.keys(s.phaseMs)).toEqual([
    'stopping',
    'rewinding',
    'applying',
    'draining',
    'swapping',
  ]);
  expect(s.phaseMs.applying).toBeLessThan(s.totalMs);
  expect(s.applyingEventsPerSecond).toBeCloseTo(total / ((s.phaseMs.applying ?? 1) / 1000), 0);
  expect(lines(r.err).filter(isJson)).toEqual([]);
  expect(r.err).toMatch(/^replay: swapping/m);
  const logged = lines(readFileSync(logFile, 'utf8')).map((l) => JSON.parse(l) as { msg: string });
  expect(logged.map((l) => l.msg)).toContain('replay started');
});

it('with --json and no --log-file keeps stdout the JSON alone and gives stderr to the logs', async () => {
  const r = await replayChild(['--to', new Date(Date.now() - 3_600_000).toISOString(), '--json']);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.out)).toMatchObject({ events: total, swapped: false });
  expect(lines(r.err).filter((l) => !isJson(l))).toEqual([]);
});

it('refuses a --log-file it cannot write, and one without a name, before touching anything', async () => {
  const errors: string[] = [];
  const run = (args: string[]) =>
    sinkCli(
      ['replay', '--to', 'earliest', ...args],
      { catalog: t.catalog, projections: testProjections },
      { env: t.env, out: () => undefined, err: (l) => errors.push(l) },
    );
  expect(await run(['--log-file', '/nonexistent-dir/replay.log'])).toBe(2);
  expect(errors.join('\n')).toMatch(/cannot write --log-file \/nonexistent-dir\/replay\.log/);
  expect(await run(['--log-file'])).toBe(2);
  expect(await run(['--log-file', '--json'])).toBe(2);
  expect(errors.join('\n')).toMatch(/--log-file needs a file name/);
});

it('in process: logs to the --log-file, or held to warn beside the result', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'replay-progress-'));
  const logFile = path.join(dir, 'in-process.log');
  const out: string[] = [];
  const err: string[] = [];
  const io = {
    env: { ...t.env, LOG_LEVEL: 'info' },
    out: (l: string) => out.push(l),
    err: (l: string) => err.push(l),
  };
  const user = { catalog: t.catalog, projections: testProjections };
  const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
  expect(await sinkCli(['replay', '--to', hourAgo, '--log-file', logFile], user, io)).toBe(0);
  expect(out.at(-1)).toMatch(new RegExp(`^replayed ${total} events in`));
  expect(err.filter(isJson)).toEqual([]);
  expect(readFileSync(logFile, 'utf8')).toContain('"msg":"replay started"');

  out.length = 0;
  err.length = 0;
  expect(await sinkCli(['replay', '--to', hourAgo, '--json'], user, io)).toBe(0);
  expect(out.filter((l) => !l.startsWith('{"level"'))).toHaveLength(1);
  expect(JSON.parse(out.at(-1) ?? '')).toMatchObject({ events: total });
  expect(err.filter((l) => !isJson(l))).toEqual([]);
});
