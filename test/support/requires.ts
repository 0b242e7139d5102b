import { it } from '@jest/globals';
import { missingPrerequisite, type PrerequisiteName } from './prerequisites.js';

/** The tag the servers reporter looks for; keep in step with test/jest/servers-reporter.js. */
export const NOT_RUN_TAG = '[not run:';

/** `it` for tests that need `prerequisite`: where it is missing, the test is skipped with the reason
 * in its title, and the run's closing `not run:` line names it. */
export function itRequiring(
  prerequisite: PrerequisiteName,
): (name: string, fn: () => Promise<void> | void, timeoutMs?: number) => void {
  const missing = missingPrerequisite(prerequisite);
  return (name, fn, timeoutMs) => {
    if (missing) it.skip(`${name} ${NOT_RUN_TAG} ${missing}]`, fn, timeoutMs);
    else it(name, fn, timeoutMs);
  };
}
