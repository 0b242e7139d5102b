/** `npm test`'s first step: installs what some tests need and the machine may lack (see
 * test/support/prerequisites.ts). Never fails the run: a prerequisite still missing turns its
 * tests into `not run:` lines. */
import { ensurePrerequisites } from './support/prerequisites.js';

await ensurePrerequisites((line) => {
  process.stdout.write(`${line}\n`);
});
