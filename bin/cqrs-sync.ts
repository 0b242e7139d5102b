#!/usr/bin/env node
// The `cqrs-sync` bin. Exit codes: 0 done, 1 failed, 2 bad usage.
import { isPipelineError } from '../schemas/errors.js';
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(isPipelineError(e) ? `cqrs-sync: ${e.message}` : e);
    process.exitCode = 1;
  },
);
