/** Moved to verify/runs.ts. Kept only because sink/sink.ts still imports `lastRun` from here (that
 * file is being refactored elsewhere); delete once it imports verify/runs.js. */
export { lastRun, type VerifyRun } from '../verify/runs.js';
