/** `cqrs-sync/verify`: compares MongoDB's aggregates with the read model and repairs the drift
 * through the pipeline (docs/operations.md, "Verify and repair"). Loads all three drivers. */
export { verify, type VerifyOptions, type VerifyProgress } from './verify.js';
export {
  DRIFT_CLASSES,
  type Drift,
  type DriftClass,
  type TypeReport,
  type VerifyReport,
} from './report.js';
