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
