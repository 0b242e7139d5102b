/** `cqrs-sync/ops`: the operations endpoint (`/metrics`, `/healthz`, `/readyz`) and the redacting
 * logger the processes use. */
export {
  mergeRegistries,
  startOpsServer,
  type OpsServer,
  type OpsServerOptions,
  type ReadinessCheck,
} from './http.js';
export { createLogger } from './logger.js';
// Verify and repair: MongoDB's aggregates against the read model (docs/operations.md).
export { verify, type VerifyOptions, type VerifyProgress } from './verify.js';
export {
  DRIFT_CLASSES,
  type Drift,
  type DriftClass,
  type TypeReport,
  type VerifyReport,
} from './verify-report.js';
