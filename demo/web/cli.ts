/**
 * `cqrs-sync demo-web`: the demo's web app alone, next to a relay and sinks running elsewhere
 * (compose). Returns the exit code: 0 after SIGTERM/SIGINT, 1 on a crash, 2 on bad configuration.
 */
import { loadDemoWebConfig, type DemoWebConfig } from './config.js';
import { startDemoWeb } from './server.js';
import { createLogger } from '../../ops/index.js';

export const DEMO_WEB_HELP = `Usage: cqrs-sync demo-web

Serves the demo's web app (commands -> MongoDB, queries <- MySQL, live updates) until SIGTERM/SIGINT.
Configuration from the environment (see demo/web/config.ts): MONGODB_URI, MYSQL_URL, KAFKA_BROKERS,
SCHEMA_REGISTRY_URL, DEMO_HOST (127.0.0.1; 0.0.0.0 in a container), DEMO_PORT (3000), SINK_GROUP_ID…
`;

export async function demoWebCli(
  argv: readonly string[],
  env?: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(DEMO_WEB_HELP);
    return 0;
  }
  let config: DemoWebConfig;
  try {
    config = env ? loadDemoWebConfig(env) : loadDemoWebConfig();
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  const logger = createLogger(config.logLevel);
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    const on = (signal: NodeJS.Signals): void => {
      resolve(signal);
    };
    process.once('SIGTERM', on);
    process.once('SIGINT', on);
  });
  try {
    const web = await startDemoWeb({ config, logger });
    const signal = await signalled;
    logger.info({ signal }, 'signal: stopping the demo web app');
    await web.stop();
    return 0;
  } catch (e) {
    logger.error({ err: e }, 'demo web app failed');
    return 1;
  }
}
