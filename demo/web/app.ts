/**
 * The demo's web app on `node:http`: static files (plain HTML + JS, no build step), a JSON API
 * (commands -> MongoDB; queries <- MySQL only) and a Server-Sent Events stream for live updates.
 *
 * Status codes: 202 command accepted (the query side follows), 400 invalid request (field-level
 * messages, nothing written), 404, 409 concurrency conflict, 413, 415, 422 domain rule violated,
 * 503 a database is unavailable, or the aggregate's relay is behind (`relay_behind`, with
 * `Retry-After`: nothing was saved, and the same command succeeds once the relay caught up). Every
 * error answer is JSON with a `message` and never a stack; an unexpected error is logged (with its
 * stack) and answered 500. An error answered before the request's body was read to its end closes
 * the connection, so the unread rest is never taken for the next request.
 */
import { readFileSync } from 'node:fs';
import {
  createServer,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { z } from 'zod';
import { isPipelineError } from '../../index.js';
import { mergeRegistries } from '../../ops/index.js';
import { DRIFT_CLASSES, type VerifyReport } from '../../verify/index.js';
import type { DemoCommandName } from '../domain/commands.js';
import { newAggregateId, type CommandRun, type DemoWriter } from './commands.js';
import type { Journey, JourneyTracker } from './journeys.js';
import type { Pipeline } from './pipeline.js';
import type { ReadModel } from './queries.js';
import {
  AddLineBody,
  CancelOrderBody,
  CreateCustomerBody,
  CreateOrderBody,
  fieldErrors,
  ID,
  RedriveBody,
  ReplayBody,
  TamperBody,
  UpdateCustomerBody,
  VersionedBody,
  VerifyBody,
} from './validation.js';

/** What the app reads from the query side (MySQL): `ReadModel`, or a fake in tests. */
export type DemoReadModel = Pick<ReadModel, 'customers' | 'orders' | 'watermark'>;
/** The journeys it tracks and lists: `JourneyTracker`, or a fake in tests. */
export type DemoJourneys = Pick<JourneyTracker, 'track' | 'list' | 'refresh'>;
/** The pipeline panel and its repairs: `Pipeline`, or a fake in tests. */
export type DemoPipelineView = Pick<Pipeline, 'status' | 'deadLetters' | 'control'>;

export interface DemoAppOptions {
  readonly writer: DemoWriter;
  readonly readModel: DemoReadModel;
  readonly journeys: DemoJourneys;
  readonly pipeline: DemoPipelineView;
  readonly logger: Logger;
  readonly listLimit: number;
  readonly pollMs: number;
  readonly pipelinePollMs: number;
  /** Served together at /metrics (asked per request: a replay replaces the sink's). */
  readonly registries: () => readonly Registry[];
}

export interface DemoApp {
  readonly server: Server;
  listen(port: number, host: string): Promise<string>;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;
/** `Retry-After` of a `relay_behind` answer: the relay publishes continuously, so soon. */
const RELAY_BEHIND_RETRY_S = 1;
const PUBLIC_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'public');
const STATIC: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** An error answer: the status and a JSON body. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(typeof body.message === 'string' ? body.message : `HTTP ${status}`);
  }
}

/** Drifts listed in a verify answer (the counts cover all of them). */
const VERIFY_LIST = 20;

/** The verify answer: counts per class, the first drifts, what was repaired. */
function verifySummary(r: VerifyReport, durationMs: number): Record<string, unknown> {
  const drift = r.types.flatMap((t) => t.drift);
  return {
    clean: r.clean,
    repair: r.repair,
    checked: r.totals.checked,
    inFlight: r.totals.inFlight,
    counts: Object.fromEntries(DRIFT_CLASSES.map((c) => [c, r.totals[c]])),
    drift: drift.slice(0, VERIFY_LIST).map((d) => ({
      type: d.aggregateType,
      id: d.aggregateId,
      class: d.class,
      columns: d.columns,
    })),
    more: Math.max(0, drift.length - VERIFY_LIST),
    repaired: r.totals.repaired,
    notRepaired: r.types.reduce((n, t) => n + t.notRepaired.length, 0),
    durationMs,
  };
}

const badRequest = (message: string, fields?: Record<string, string[]>): HttpError =>
  new HttpError(400, { error: 'invalid_request', message, ...(fields ? { fields } : {}) });

function parse<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const r = schema.safeParse(body);
  if (!r.success) throw badRequest('the request is invalid', fieldErrors(r.error));
  return r.data;
}

/** Without undefined values (so a missing optional never overrides a default). */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Maps the write side's error codes to HTTP. */
function commandError(e: unknown): HttpError {
  if (isPipelineError(e)) {
    const body = { error: e.code, message: e.message, retriable: e.retriable };
    switch (e.code) {
      case 'command_invalid':
        return new HttpError(400, body);
      case 'domain_rule_violated':
        return new HttpError(422, body);
      case 'aggregate_not_found':
        return new HttpError(404, body);
      case 'concurrency_conflict':
        return new HttpError(409, body);
      case 'database_unavailable':
        return new HttpError(503, body);
      case 'relay_behind':
        // Backpressure: the aggregate holds too many unpublished events. Retriable, not a fault.
        return new HttpError(503, body, { 'retry-after': String(RELAY_BEHIND_RETRY_S) });
      default:
        break;
    }
  }
  if (isMongoUnavailable(e)) {
    return new HttpError(503, {
      error: 'database_unavailable',
      message: 'MongoDB (the write model) is unavailable: the command was not saved; try again',
      retriable: true,
    });
  }
  throw e;
}

function isMongoUnavailable(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  return (
    typeof name === 'string' &&
    /MongoNetwork|MongoServerSelection|MongoNotConnected|MongoTopologyClosed/.test(name)
  );
}

function readError(e: unknown, what: string): HttpError {
  return new HttpError(503, {
    error: 'database_unavailable',
    message: `${what} is unavailable: ${e instanceof Error ? e.message : String(e)}`,
    retriable: true,
  });
}

const tooLarge = (): HttpError =>
  new HttpError(413, {
    error: 'payload_too_large',
    message: `the body may be at most ${MAX_BODY_BYTES} bytes`,
  });

/**
 * The body as text, refused with 413 as soon as it is known to be over the limit (by its
 * Content-Length, or when the bytes read pass it). Past the limit nothing more is kept: the rest
 * is discarded and the error answer closes the connection (see `fail`).
 */
function readText(req: IncomingMessage): Promise<string> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        done();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onGone = (): void => {
      done();
      reject(badRequest('the body did not arrive in full (the client went away)'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  });
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  const length = Number(req.headers['content-length'] ?? 0);
  if (length === 0 && req.headers['transfer-encoding'] === undefined) return {};
  if (type !== 'application/json') {
    throw new HttpError(415, {
      error: 'unsupported_media_type',
      message: 'send the body as application/json',
    });
  }
  const text = await readText(req);
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badRequest('the body is not valid JSON');
  }
}

/** A JSON answer; `close` ends the connection once it is flushed (Node then closes the socket). */
function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  close = false,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(text);
}

/** A path segment as text; a malformed percent-encoding (`%E0%A4%A`, `%`) is the client's error. */
function decodeSegment(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw badRequest(`invalid ${name}`, {
      [name]: ['is not valid percent-encoding (encode the path segment as UTF-8)'],
    });
  }
}

type Params = Readonly<Record<string, string>>;
type Handler = (req: IncomingMessage, params: Params) => Promise<{ status: number; body: unknown }>;

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly names: readonly string[];
  readonly handler: Handler;
}

function route(method: string, template: string, handler: Handler): Route {
  const names: string[] = [];
  const pattern = new RegExp(
    `^${template.replace(/:([a-zA-Z]+)/g, (_, n: string) => {
      names.push(n);
      return '([^/]+)';
    })}$`,
  );
  return { method, pattern, names, handler };
}

export function createDemoApp(o: DemoAppOptions): DemoApp {
  const log = o.logger.child({ component: 'demo-web' });
  const files = new Map(
    Object.entries(STATIC).map(([p, s]) => [
      p,
      { body: readFileSync(path.join(PUBLIC_DIR, s.file)), type: s.type },
    ]),
  );
  const clients = new Set<ServerResponse>();
  let ticker: NodeJS.Timeout | undefined;
  let pipelineTicker: NodeJS.Timeout | undefined;
  let lastWatermark = '';
  let ticking = false;
  let pipelineTicking = false;
  let verifying = false;

  const broadcast = (event: string, data: unknown): void => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of clients) c.write(frame);
  };

  const tick = async (): Promise<void> => {
    if (ticking) return;
    ticking = true;
    try {
      const changed = await o.journeys.refresh();
      if (changed.length > 0) broadcast('journeys', changed);
      const mark = await o.readModel.watermark().catch(() => lastWatermark);
      if (mark !== lastWatermark) {
        lastWatermark = mark;
        broadcast('readmodel', { watermark: mark });
      }
    } catch (e) {
      log.warn({ err: e }, 'live update tick failed');
    } finally {
      ticking = false;
    }
  };

  const pipelineTick = async (): Promise<void> => {
    if (pipelineTicking) return;
    pipelineTicking = true;
    try {
      broadcast('pipeline', await o.pipeline.status());
    } catch (e) {
      log.warn({ err: e }, 'pipeline status failed');
    } finally {
      pipelineTicking = false;
    }
  };

  const startTickers = (): void => {
    ticker ??= setInterval(() => void tick(), o.pollMs);
    pipelineTicker ??= setInterval(() => void pipelineTick(), o.pipelinePollMs);
  };
  const stopTickers = (): void => {
    clearInterval(ticker);
    clearInterval(pipelineTicker);
    ticker = undefined;
    pipelineTicker = undefined;
  };

  const command = async (
    name: DemoCommandName,
    input: Record<string, unknown>,
    expectedVersion?: number,
  ): Promise<CommandRun> => {
    let run: CommandRun;
    try {
      run = await o.writer.run(name, defined(input), expectedVersion);
    } catch (e) {
      throw commandError(e);
    }
    const journeys = o.journeys.track(run);
    if (journeys.length > 0) broadcast('journeys', journeys);
    log.info(
      {
        command: name,
        aggregateId: run.result.aggregateId,
        version: run.result.version,
        applied: run.result.applied,
      },
      'command accepted',
    );
    return run;
  };

  const accepted = (runs: readonly CommandRun[]) => {
    const last = runs[runs.length - 1];
    return {
      status: 202,
      body: {
        accepted: true,
        aggregateType: last?.result.aggregateType,
        aggregateId: last?.result.aggregateId,
        version: last?.result.version,
        commands: runs.map((r) => ({
          command: r.command,
          applied: r.result.applied,
          ...(r.result.applied ? {} : { reason: r.result.reason }),
          version: r.result.version,
          eventIds: r.result.eventIds,
        })),
      },
    };
  };

  const idParam = (params: Params, name: string): string => {
    const v = params[name] ?? '';
    if (!ID.test(v))
      throw badRequest(`invalid ${name}`, { [name]: ['use 1 to 64 letters, digits, - or _'] });
    return v;
  };

  const routes: Route[] = [
    route('GET', '/api/customers', async () => {
      try {
        return { status: 200, body: { customers: await o.readModel.customers(o.listLimit) } };
      } catch (e) {
        throw readError(e, 'MySQL (the read model)');
      }
    }),
    route('GET', '/api/orders', async () => {
      try {
        return { status: 200, body: { orders: await o.readModel.orders(o.listLimit) } };
      } catch (e) {
        throw readError(e, 'MySQL (the read model)');
      }
    }),
    route('GET', '/api/journeys', async () => {
      await o.journeys.refresh();
      return { status: 200, body: { journeys: o.journeys.list() } };
    }),
    route('GET', '/api/pipeline', async () => ({
      status: 200,
      body: await o.pipeline.status(),
    })),
    route('GET', '/api/dead-letters', async () => {
      try {
        return { status: 200, body: { deadLetters: await o.pipeline.deadLetters() } };
      } catch (e) {
        throw readError(e, 'MySQL (the sink tables)');
      }
    }),
    route('POST', '/api/customers', async (req) => {
      const b = parse(CreateCustomerBody, await readBody(req));
      const run = await command('RegisterCustomer', {
        commandId: b.commandId,
        customerId: b.customerId ?? newAggregateId('c'),
        name: b.name,
        email: b.email,
      });
      return accepted([run]);
    }),
    // One request is one command: the new name and email are saved together or not at all, checked
    // against the one version the client saw.
    route('PATCH', '/api/customers/:id', async (req, params) => {
      const customerId = idParam(params, 'id');
      const b = parse(UpdateCustomerBody, await readBody(req));
      return accepted([
        await command(
          'UpdateCustomer',
          { commandId: b.commandId, customerId, name: b.name, email: b.email },
          b.expectedVersion,
        ),
      ]);
    }),
    route('DELETE', '/api/customers/:id', async (req, params) => {
      const customerId = idParam(params, 'id');
      const b = parse(VersionedBody, await readBody(req));
      return accepted([
        await command('DeleteCustomer', { commandId: b.commandId, customerId }, b.expectedVersion),
      ]);
    }),
    route('POST', '/api/orders', async (req) => {
      const b = parse(CreateOrderBody, await readBody(req));
      return accepted([
        await command('CreateOrder', {
          commandId: b.commandId,
          orderId: b.orderId ?? newAggregateId('o'),
          customerId: b.customerId,
        }),
      ]);
    }),
    route('POST', '/api/orders/:id/lines', async (req, params) => {
      const orderId = idParam(params, 'id');
      const b = parse(AddLineBody, await readBody(req));
      return accepted([
        await command(
          'AddOrderLine',
          {
            commandId: b.commandId,
            orderId,
            lineId: b.lineId ?? newAggregateId('l'),
            sku: b.sku,
            quantity: b.quantity,
            unitPriceCents: b.unitPriceCents,
          },
          b.expectedVersion,
        ),
      ]);
    }),
    route('DELETE', '/api/orders/:id/lines/:lineId', async (req, params) => {
      const orderId = idParam(params, 'id');
      const lineId = idParam(params, 'lineId');
      const b = parse(VersionedBody, await readBody(req));
      return accepted([
        await command(
          'RemoveOrderLine',
          { commandId: b.commandId, orderId, lineId },
          b.expectedVersion,
        ),
      ]);
    }),
    route('POST', '/api/orders/:id/place', async (req, params) => {
      const orderId = idParam(params, 'id');
      const b = parse(VersionedBody, await readBody(req));
      return accepted([
        await command('PlaceOrder', { commandId: b.commandId, orderId }, b.expectedVersion),
      ]);
    }),
    route('POST', '/api/orders/:id/cancel', async (req, params) => {
      const orderId = idParam(params, 'id');
      const b = parse(CancelOrderBody, await readBody(req));
      return accepted([
        await command(
          'CancelOrder',
          { commandId: b.commandId, orderId, reason: b.reason },
          b.expectedVersion,
        ),
      ]);
    }),
    route('DELETE', '/api/orders/:id', async (req, params) => {
      const orderId = idParam(params, 'id');
      const b = parse(VersionedBody, await readBody(req));
      return accepted([
        await command('DeleteOrder', { commandId: b.commandId, orderId }, b.expectedVersion),
      ]);
    }),
    route('POST', '/api/pipeline/redrive', async (req) => {
      const b = parse(RedriveBody, await readBody(req));
      try {
        const result = await o.pipeline.control.redrive(b.target);
        log.info({ target: b.target, ...result }, 're-drive done');
        void tick();
        return { status: 200, body: result };
      } catch (e) {
        if (isPipelineError(e)) {
          const status = e.code === 'config_invalid' ? 404 : e.retriable ? 503 : 422;
          throw new HttpError(status, { error: e.code, message: e.message });
        }
        throw e;
      }
    }),
    route('POST', '/api/pipeline/replay', async (req) => {
      parse(ReplayBody, await readBody(req));
      const replay = o.pipeline.control.replay;
      if (!replay) {
        throw new HttpError(409, {
          error: 'replay_unavailable',
          message:
            'the sink runs in another process: run `cqrs-sync replay --group <group> --to earliest` there',
        });
      }
      const result = await replay();
      log.warn({ ...result }, 'replay started from the earliest offsets');
      return { status: 200, body: result };
    }),
    route('POST', '/api/pipeline/tamper', async (req) => {
      parse(TamperBody, await readBody(req));
      const tamper = o.pipeline.control.tamper;
      if (!tamper) {
        throw new HttpError(409, {
          error: 'tamper_unavailable',
          message: 'this web app cannot write to the read model',
        });
      }
      const result = await tamper();
      if (!result) {
        throw new HttpError(409, {
          error: 'nothing_to_tamper',
          message: 'no customer row to tamper with: create a customer first',
        });
      }
      log.warn({ ...result }, 'demo: a customer row was edited by hand, around the sink');
      return {
        status: 200,
        body: {
          ...result,
          demoOnly: true,
          message: `demo only: customers.${result.column} of ${result.aggregateId} edited by hand at version ${String(result.version)}; verify finds it`,
        },
      };
    }),
    route('POST', '/api/pipeline/verify', async (req) => {
      const b = parse(VerifyBody, await readBody(req));
      const run = o.pipeline.control.verify;
      if (!run) {
        throw new HttpError(409, {
          error: 'verify_unavailable',
          message: 'this web app has not the pipeline settings: run `cqrs-sync verify` instead',
        });
      }
      if (verifying) {
        throw new HttpError(409, {
          error: 'verify_running',
          message: 'a verify is running already: wait for its answer',
        });
      }
      verifying = true;
      const started = Date.now();
      try {
        const report = await run(b.repair);
        const body = verifySummary(report, Date.now() - started);
        log.info(
          { ...body, drift: undefined },
          b.repair ? 'verify and repair done' : 'verify done',
        );
        void tick();
        return { status: 200, body };
      } catch (e) {
        if (isPipelineError(e)) {
          throw new HttpError(e.retriable ? 503 : 422, { error: e.code, message: e.message });
        }
        throw e;
      } finally {
        verifying = false;
      }
    }),
  ];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      throw badRequest('the request target is not a valid URL');
    }
    const method = req.method ?? 'GET';
    const file = files.get(url.pathname);
    if (file && (method === 'GET' || method === 'HEAD')) {
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': file.type,
        'cache-control': 'no-cache',
      });
      res.end(method === 'HEAD' ? undefined : file.body);
      return;
    }
    if (url.pathname === '/healthz' && method === 'GET') {
      send(res, 200, { alive: true });
      return;
    }
    if (url.pathname === '/metrics' && method === 'GET') {
      const merged = mergeRegistries(o.registries());
      const text = await merged.metrics();
      res.writeHead(200, { 'content-type': merged.contentType });
      res.end(text);
      return;
    }
    if (url.pathname === '/api/stream' && method === 'GET') {
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      res.write('retry: 1000\nevent: hello\ndata: {}\n\n');
      clients.add(res);
      startTickers();
      void pipelineTick();
      req.on('close', () => {
        clients.delete(res);
        if (clients.size === 0) stopTickers();
      });
      return;
    }
    let allowed = false;
    for (const r of routes) {
      const m = r.pattern.exec(url.pathname);
      if (!m) continue;
      allowed = true;
      if (r.method !== method) continue;
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => {
        params[n] = decodeSegment(n, m[i + 1] ?? '');
      });
      const out = await r.handler(req, params);
      send(res, out.status, out.body);
      return;
    }
    if (allowed)
      throw new HttpError(405, {
        error: 'method_not_allowed',
        message: `${method} is not allowed here`,
      });
    throw new HttpError(404, { error: 'not_found', message: `nothing at ${url.pathname}` });
  };

  /** Answers an error: its JSON, or 500 for an unexpected one (logged with its stack, answered
   * without). A body not read to its end closes the connection: its rest is not a next request. */
  const fail = (req: IncomingMessage, res: ServerResponse, e: unknown): void => {
    let status = 500;
    let body: Record<string, unknown> = {
      error: 'internal',
      message: 'internal error (see the log)',
    };
    let headers: Readonly<Record<string, string>> = {};
    if (e instanceof HttpError) {
      status = e.status;
      body = e.body;
      headers = e.headers;
      if (status >= 500) log.warn({ status, err: e.message }, 'request failed');
    } else {
      log.error({ err: e, url: req.url, method: req.method }, 'request failed unexpectedly');
    }
    if (res.headersSent) res.destroy();
    else send(res, status, body, !req.complete, headers);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      fail(req, res, e);
    });
  });
  // What Node's HTTP parser refuses (not HTTP, headers too large) never reaches `handle`: answered
  // here, as JSON too, and the connection closed (its framing is lost).
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? 431
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 408
          : 400;
    const body = JSON.stringify({
      error: 'bad_request',
      message: `the request is not valid HTTP (${STATUS_CODES[status] ?? 'bad request'})`,
    });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
        'content-type: application/json; charset=utf-8\r\n' +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        'connection: close\r\n\r\n' +
        body,
    );
  });

  return {
    server,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          resolve(`http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`);
        });
      }),
    close: async () => {
      stopTickers();
      for (const c of clients) c.end();
      clients.clear();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
    },
  };
}

export type { Journey };
