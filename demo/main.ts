/**
 * `npm run demo`: the pipeline on local servers. Until the write side, relay and sink land, it starts
 * the servers, prints what runs where, and stops everything on Ctrl-C.
 */
import { isHarnessError } from '../infra/local/errors.js';
import { redact } from '../infra/local/stack.js';
import { serveUntilSignal } from '../infra/local/serve.js';

async function main(): Promise<void> {
  console.log('cqrs-sync demo: starting local servers (the first run downloads them)…');
  await serveUntilSignal({
    log: (line) => {
      console.log(line);
    },
    onReady: (stack) => {
      console.log('\nrunning:');
      for (const line of stack.lines()) console.log(`  ${line}`);
      console.log('\nclients connect with:');
      for (const [k, v] of Object.entries(stack.env)) console.log(`  ${k}=${redact(v)}`);
      console.log(
        '\n(relay, sink and the web app arrive with their issues.) Ctrl-C stops everything.',
      );
    },
  });
  console.log('demo stopped');
}

main().catch((e: unknown) => {
  console.error(isHarnessError(e) ? e.message : e);
  process.exitCode = 1;
});
