/**
 * `npm run demo`: the whole pipeline on local servers, in one process. Checks that DEMO_PORT is free
 * (else exits 1 at once), starts the servers (the harness), runs the migrations, then the relay, the
 * sink and the web app; prints the URLs; on SIGINT/SIGTERM stops them in reverse order (web, sink,
 * relay, clients, servers) and this process exits 0 (npm itself reports 130 for a Ctrl-C: see
 * docs/demo.md). The terminal gets the demo's own lines; every log record goes to demo.log.
 */
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { isHarnessError } from '../infra/local/errors.js';
import { killAllNow } from '../infra/local/process.js';
import { printableEnv, startStack, type Stack } from '../infra/local/stack.js';
import { isPipelineError, PipelineError } from '../index.js';
import { createLogger } from '../ops/index.js';
import { relayCollections } from '../relay/index.js';
import { listenProblem, terminalLine } from './terminal.js';
import {
  environmentWith,
  loadDemoListenConfig,
  loadDemoWebConfig,
  type DemoListenConfig,
} from './web/config.js';
import { startDemoPipeline } from './web/run.js';

const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

/** Unwinds in reverse order of start; each step once. */
class Shutdown {
  private readonly steps: { name: string; fn: () => Promise<void> }[] = [];
  get empty(): boolean {
    return this.steps.length === 0;
  }
  add(name: string, fn: () => Promise<void>): void {
    this.steps.push({ name, fn });
  }
  async run(log: (line: string) => void): Promise<void> {
    for (const s of this.steps.splice(0).reverse()) {
      try {
        await s.fn();
      } catch (e) {
        log(`stopping ${s.name} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
}

function demoLogger(runDir: string, level: string): { logger: Logger; file: string } {
  mkdirSync(runDir, { recursive: true });
  const file = path.join(runDir, 'demo.log');
  const logger = createLogger(
    level,
    pino.multistream([
      { level: 'info', stream: pino.destination({ dest: file, sync: false, mkdir: true }) },
      // The terminal gets the pipeline's own errors, one readable line each (see terminalLine).
      {
        level: 'error',
        stream: {
          write: (line: string) => {
            const shown = terminalLine(line);
            if (shown) process.stderr.write(shown);
          },
        },
      },
    ]),
  );
  return { logger, file };
}

/** The listen error code for `host:port`, or undefined when it is free (or 0: any free port). */
function listenCheck({ host, port }: DemoListenConfig): Promise<string | undefined> {
  if (port === 0) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (e: NodeJS.ErrnoException) => {
      resolve(e.code ?? e.message);
    });
    probe.listen({ host, port, exclusive: true }, () => {
      probe.close(() => {
        resolve(undefined);
      });
    });
  });
}

function cannotListen(listen: DemoListenConfig, code: string | undefined): PipelineError {
  return new PipelineError(
    'config_invalid',
    listenProblem(listen.host, listen.port, code, listen.portGiven),
    { retriable: false, context: { host: listen.host, port: listen.port } },
  );
}

async function main(): Promise<number> {
  let signalled: NodeJS.Signals | undefined;
  let signalledAt = 0;
  // A function, not the variable: the signal handler sets it while we await.
  const stopRequested = (): boolean => signalled !== undefined;
  let wake: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      // tsx passes the terminal's Ctrl-C on to this process a moment after the terminal did: the
      // same key press, not a second one.
      if (signal === signalled && Date.now() - signalledAt < 500) return;
      say(`\n${signal} again: killing everything now`);
      killAllNow();
      process.exit(130);
    }
    signalled = signal;
    signalledAt = Date.now();
    say(`\n${signal}: stopping (again to kill at once)…`);
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const shutdown = new Shutdown();
  let failed = false;
  let listen: DemoListenConfig | undefined;
  try {
    // Before any server starts: a taken port fails now, not after every server is up.
    listen = loadDemoListenConfig();
    const busy = await listenCheck(listen);
    if (busy) throw cannotListen(listen, busy);

    say('cqrs-sync demo: starting local servers (the first run downloads them)…');
    const stack: Stack = await startStack({ log: say });
    shutdown.add('servers', () => stack.stop());
    if (stopRequested()) return 0;

    const env = environmentWith(stack.env);
    const webConfig = loadDemoWebConfig(env);
    const { logger, file: logFile } = demoLogger(stack.config.runDir, webConfig.logLevel);
    shutdown.add(
      'logger',
      () =>
        new Promise<void>((resolve) => {
          logger.flush(() => {
            resolve();
          });
        }),
    );

    say('\nmigrations, relay, sink, web app…');
    const demo = await startDemoPipeline({
      env,
      logger,
      log: (l) => {
        say(`  ${l}`);
      },
    });
    shutdown.add('relay, sink and web app', () => demo.stop());
    const { web, relay, relayConfig, sinkConfig, catalog } = demo;

    say('\nrunning:');
    // The servers' own lines say which MongoDB this is: a real mongod, or the stand-in.
    for (const line of stack.lines()) say(`  ${line}`);
    const types = catalog.aggregates.map((a) => a.type);
    const collections = Object.values(relayCollections(types, relayConfig)).join(',');
    say(
      `  relay: in this process (${relay.role}), outbox inside the aggregate documents of ${relayConfig.database}.{${collections}}`,
    );
    say(`  sink: in this process, consumer group ${sinkConfig.groupId}`);
    // In full for the servers this run started: throwaway, on loopback, gone with the run folder.
    const own = stack.servers.some((s) => s.origin !== 'env');
    say(`\nclients connect with${own ? ' (passwords of the servers started here in full)' : ''}:`);
    for (const [k, v] of printableEnv(stack.servers)) say(`  ${k}=${v}`);
    say('');
    say(`demo:    ${web.url}/`);
    say(`metrics: ${web.url}/metrics   (relay and sink, Prometheus text)`);
    if (relay.opsUrl) say(`relay:   ${relay.opsUrl}/metrics  /healthz  /readyz`);
    const sinkOps = demo.sink()?.opsUrl;
    if (sinkOps) say(`sink:    ${sinkOps}/metrics  /healthz  /readyz`);
    say(`health:  ${web.url}/healthz`);
    say(`log:     ${logFile}`);
    say('\nCtrl-C stops everything.');

    if (!stopRequested()) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        // A crash of the relay or sink ends the demo with an error.
        demo.failed.catch((e: unknown) => {
          failed = true;
          say(`pipeline failed: ${e instanceof Error ? e.message : String(e)}`);
          resolve();
        });
      });
    }
  } catch (caught) {
    failed = true;
    // Someone took the port between the check and the web app's listen.
    const code = caught instanceof Error ? (caught as NodeJS.ErrnoException).code : undefined;
    const e = code === 'EADDRINUSE' && listen ? cannotListen(listen, code) : caught;
    say(
      `\ndemo failed: ${isHarnessError(e) || isPipelineError(e) ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    );
  } finally {
    if (!shutdown.empty) say('stopping…');
    await shutdown.run(say);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  say(failed ? 'demo stopped after a failure' : 'demo stopped');
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);
