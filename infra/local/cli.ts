/**
 * `npm run servers [-- --only kafka,mysql] [--json]`: runs the local servers until Ctrl-C.
 * Prints one line a server and the variables that point clients at them.
 */
import { parseArgs } from 'node:util';
import { isHarnessError } from './errors.js';
import { serveUntilSignal } from './serve.js';
import { SERVER_NAMES, type ServerName } from './types.js';

function parseOnly(value: string | undefined): ServerName[] | undefined {
  if (!value) return undefined;
  const names = value.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!(SERVER_NAMES as readonly string[]).includes(n)) {
      throw new Error(`--only: unknown server "${n}"; choose from ${SERVER_NAMES.join(', ')}`);
    }
  }
  return names as ServerName[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { only: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const only = parseOnly(values.only);
  await serveUntilSignal({
    ...(only ? { only } : {}),
    log: (line) => {
      console.error(line);
    },
    onReady: (stack) => {
      for (const line of stack.lines()) console.log(line);
      for (const [k, v] of Object.entries(stack.env)) console.log(`export ${k}='${v}'`);
      if (values.json) {
        const pids = stack.servers.flatMap((s) => s.pids());
        console.log(JSON.stringify({ ready: true, pids, env: stack.env }));
      }
      console.log('servers ready; Ctrl-C stops them');
    },
  });
  console.log('servers stopped');
}

main().catch((e: unknown) => {
  console.error(isHarnessError(e) ? e.message : e);
  process.exitCode = 1;
});
