/**
 * `cqrs-sync verify [--type <T>…] [--repair] [--json] [--max-rate <n>] [--settle <ms>]`.
 * Exit codes: 0 clean, 1 drift found (repaired or not), 2 could not run (bad usage, a server down).
 * Progress goes to stderr (a bar on a terminal, lines every 5 s otherwise); the result to stdout.
 */
import { pino } from 'pino';
import type { Catalog } from '../schemas/catalog.js';
import { isPipelineError } from '../schemas/errors.js';
import type { Projection } from '../sink/projection.js';
import { ProgressReporter } from '../ops/progress.js';
import { DRIFT_CLASSES, type VerifyReport } from './report.js';
import { verify } from './verify.js';

export const VERIFY_HELP = `Usage: cqrs-sync verify [--type <Type>]... [--repair] [--json] [--max-rate <aggregates/s>] [--settle <ms>]

  Compares every aggregate in MongoDB (id, version, deleted, state) with the sink's bookkeeping and
  with the rows the projections keep for it in MySQL, the expected rows being what the projections
  make of the aggregate's current state (run in a transaction that is rolled back). Reports, per
  aggregate type, each class of drift with the ids: missing, behind, ahead, deleted_present,
  content (with the differing columns) and orphan (rows or bookkeeping with no aggregate).
  Aggregates with events still on their way are in flight, not drift; they are checked again for
  up to --settle ms (default 10000).

  --repair      publish, for each drifted aggregate, a <Type>Snapshotted event with its current
                state on its own topic and key (header cqrs-repair: 1), and a delete for orphan
                keys; the sink applies them even at the version it has. Verify again afterwards.
  --max-rate n  at most n aggregates a second (gentle on a busy database)
  --json        the report as JSON on stdout

  Reads the relay's (MONGODB_URI, RELAY_OUTBOX_DATABASE, …) and the sink's (MYSQL_SINK_URL,
  KAFKA_BROKERS, SINK_GROUP_ID, SCHEMA_REGISTRY_URL, …) environment. Exit 0 clean, 1 drift, 2
  could not run.

Examples:
  cqrs-sync verify
  cqrs-sync verify --type Order --max-rate 2000
  cqrs-sync verify --repair && cqrs-sync verify
`;

export interface VerifyUser {
  readonly catalog: Catalog;
  readonly projections: readonly Projection[];
  readonly env?: Record<string, string | undefined>;
  readonly settleMs?: number;
}

export interface VerifyIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const LIST = 20;

export function formatReport(r: VerifyReport): string {
  const out: string[] = [];
  for (const t of r.types) {
    const found = DRIFT_CLASSES.filter((c) => t.counts[c] > 0)
      .map((c) => `${c} ${t.counts[c]}`)
      .join(', ');
    out.push(
      `${t.aggregateType}: ${t.checked} checked, ${t.inFlight.length} in flight, ${found === '' ? 'no drift' : found}`,
    );
    for (const c of DRIFT_CLASSES) {
      const list = t.drift.filter((d) => d.class === c);
      for (const d of list.slice(0, LIST)) {
        const cols = d.columns.length > 0 ? ` [${d.columns.join(', ')}]` : '';
        out.push(`  ${c.padEnd(15)} ${d.aggregateId}  ${d.detail}${cols}`);
      }
      if (list.length > LIST) out.push(`  ${c.padEnd(15)} … ${list.length - LIST} more (--json)`);
    }
    if (r.repair) {
      const n = DRIFT_CLASSES.reduce((a, c) => a + t.repaired[c], 0);
      out.push(`  repaired: ${n} repair events published`);
      for (const x of t.notRepaired.slice(0, LIST))
        out.push(`  not repaired    ${x.aggregateId}  ${x.reason}`);
    }
  }
  const drift = DRIFT_CLASSES.reduce((a, c) => a + r.totals[c], 0);
  out.push(
    r.clean
      ? `clean: ${r.totals.checked} aggregates agree (${r.totals.inFlight} in flight)`
      : `drift: ${drift} of ${r.totals.checked} aggregates${r.repair ? `; ${r.totals.repaired} repair events published: run verify again once the sink has applied them` : ' (cqrs-sync verify --repair heals it)'}`,
  );
  return out.join('\n');
}

function parse(argv: readonly string[]):
  | {
      ok: true;
      types: string[];
      repair: boolean;
      json: boolean;
      maxRate: number;
      settleMs?: number;
    }
  | { ok: false; error: string } {
  const types: string[] = [];
  let repair = false;
  let json = false;
  let maxRate = 0;
  let settleMs: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const value = (): string | undefined => argv[++i];
    if (a === '--type') {
      const v = value();
      if (!v) return { ok: false, error: '--type needs an aggregate type' };
      types.push(v);
    } else if (a === '--repair') repair = true;
    else if (a === '--json') json = true;
    else if (a === '--max-rate' || a === '--settle') {
      const v = Number(value());
      if (!Number.isFinite(v) || v < 0) return { ok: false, error: `${a} needs a number ≥ 0` };
      if (a === '--max-rate') maxRate = v;
      else settleMs = v;
    } else return { ok: false, error: `unknown option ${a}` };
  }
  return settleMs === undefined
    ? { ok: true, types, repair, json, maxRate }
    : { ok: true, types, repair, json, maxRate, settleMs };
}

export async function verifyCli(
  argv: readonly string[],
  user: VerifyUser,
  io: Partial<VerifyIo> = {},
): Promise<number> {
  const out = io.out ?? ((l: string) => void process.stdout.write(`${l}\n`));
  const err = io.err ?? ((l: string) => void process.stderr.write(`${l}\n`));
  if (argv.includes('--help') || argv.includes('-h')) {
    out(VERIFY_HELP);
    return 0;
  }
  const args = parse(argv);
  if (!args.ok) {
    err(`verify: ${args.error}\n\n${VERIFY_HELP}`);
    return 2;
  }
  const progress = new ProgressReporter({
    label: 'verify',
    unit: { many: 'aggregates', perSecond: 'agg/s' },
    tty: io.err === undefined && process.stderr.isTTY,
    columns: () => process.stderr.columns,
    write: io.err
      ? (text) => {
          for (const l of text.replace(/\n$/, '').split('\n')) io.err?.(l);
        }
      : (text) => void process.stderr.write(text),
  });
  let phase = '';
  try {
    const report = await verify({
      catalog: user.catalog,
      projections: user.projections,
      ...(user.env ? { env: user.env } : {}),
      types: args.types,
      repair: args.repair,
      maxRate: args.maxRate,
      ...(args.settleMs !== undefined
        ? { settleMs: args.settleMs }
        : user.settleMs !== undefined
          ? { settleMs: user.settleMs }
          : {}),
      logger: pino({ level: 'warn' }, pino.destination(2)),
      onProgress: (p) => {
        const name = `${p.phase} ${p.aggregateType}`;
        if (name !== phase) {
          phase = name;
          progress.phase(name, p.phase === 'checking' ? `about ${p.total} aggregates` : '');
        }
        if (p.phase === 'checking') progress.applied(p.done, p.total);
      },
    });
    progress.finish();
    out(args.json ? JSON.stringify(report, null, 2) : formatReport(report));
    return report.clean ? 0 : 1;
  } catch (e) {
    progress.close();
    err(
      `verify could not run: ${isPipelineError(e) ? e.message : e instanceof Error ? e.message : String(e)}`,
    );
    return 2;
  }
}
