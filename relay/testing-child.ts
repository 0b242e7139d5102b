/**
 * The relay as a child process for crash tests:
 * `node --import tsx relay/testing-child.ts <topic-prefix> run`, configured by the relay's environment.
 */
import { relayCli } from './cli.js';
import { testCatalog } from './testing.js';

const [prefix = '', ...args] = process.argv.slice(2);
process.exitCode = await relayCli(args, { catalog: testCatalog(prefix) });
