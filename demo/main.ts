/**
 * `npm run demo`: the whole pipeline on local servers, in one process. Starts the servers (the
 * harness), runs the migrations, then the relay, the sink and the web app; prints the URLs; on
 * SIGINT/SIGTERM stops them in reverse order (web, sink, relay, clients, servers) and exits 0.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { isHarnessError } from '../infra/local/errors.js';
import { killAllNow } from '../infra/local/process.js';
import { redact, startStack, type Stack } from '../infra/local/stack.js';
import { isPipelineError } from '../schemas/errors.js';
import { environmentWith, loadDemoWebConfig } from './web/config.js';
import { startDemoPipeline } from './web/run.js';

const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

/** Unwinds in reverse order of start; each step once. */
class Shutdown {
  private readonly steps: { name: string; fn: () => Promise<void> }[] = [];
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
  const logger = pino(
    { level },
    pino.multistream([
      { level: 'info', stream: pino.destination({ dest: file, sync: false, mkdir: true }) },
      { level: 'error', stream: process.stderr },
    ]),
  );
  return { logger, file };
}

async function main(): Promise<number> {
  let signalled: NodeJS.Signals | undefined;
  // A function, not the variable: the signal handler sets it while we await.
  const stopRequested = (): boolean => signalled !== undefined;
  let wake: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      say(`\n${signal} again: killing everything now`);
      killAllNow();
      process.exit(130);
    }
    signalled = signal;
    say(`\n${signal}: stopping (again to kill at once)…`);
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const shutdown = new Shutdown();
  let failed = false;
  try {
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
    if (webConfig.mongoStandIn) {
      say('');
      say('!! WARNING: MongoDB is the mongo-java-server stand-in: it has NO TRANSACTIONS.');
      say('!! The demo writes state and outbox one after another (unsafeAllowNonTransactional):');
      say('!! a crash between them can lose an event. Never run like this in production.');
      say(
        '!! Give it a real mongod: MONGOD_BIN=/path/to/mongod, MONGOD_DOWNLOAD=1 or MONGODB_URI.',
      );
      logger.warn(
        { mongo: 'stand-in' },
        'UNSAFE DEMO MODE: MongoDB stand-in without transactions; writes are not atomic',
      );
    }

    say('\nmigrations, relay, sink, web app…');
    const demo = await startDemoPipeline({
      env,
      logger,
      log: (l) => {
        say(`  ${l}`);
      },
    });
    shutdown.add('relay, sink and web app', () => demo.stop());
    const { web, relay, relayConfig, sinkConfig } = demo;

    say('\nrunning:');
    for (const line of stack.lines()) say(`  ${line}`);
    say(`  relay: in this process (${relay.role}), outbox ${relayConfig.database}.outbox`);
    say(`  sink: in this process, consumer group ${sinkConfig.groupId}`);
    say('\nclients connect with:');
    for (const [k, v] of Object.entries(stack.env)) say(`  ${k}=${redact(v)}`);
    say('');
    say(`demo:    ${web.url}/`);
    say(`metrics: ${web.url}/metrics   (relay and sink, Prometheus text)`);
    if (relay.opsUrl) say(`relay:   ${relay.opsUrl}/metrics  /healthz  /readyz`);
    const sinkOps = demo.sink()?.opsUrl;
    if (sinkOps) say(`sink:    ${sinkOps}/metrics  /healthz  /readyz`);
    say(`health:  ${web.url}/healthz`);
    say(`log:     ${logFile}`);
    if (webConfig.mongoStandIn) say('(MongoDB stand-in: the page shows a warning banner)');
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
  } catch (e) {
    failed = true;
    say(
      `\ndemo failed: ${isHarnessError(e) || isPipelineError(e) ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    );
  } finally {
    say('stopping…');
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
