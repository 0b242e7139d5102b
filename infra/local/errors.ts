/**
 * Errors of the local server harness. Each one names the server, says whether trying again can help,
 * and carries the log file and its last lines so a failed start is diagnosable from the message alone.
 */
export type HarnessErrorCode =
  | 'prerequisite_missing'
  | 'install_failed'
  | 'port_in_use'
  | 'start_timeout'
  | 'exited_early'
  | 'setup_failed'
  | 'bad_config';

export interface HarnessErrorDetails {
  readonly server: string;
  readonly retriable: boolean;
  readonly advice?: string;
  readonly logFile?: string;
  readonly logTail?: readonly string[];
  readonly cause?: unknown;
}

export class HarnessError extends Error {
  override readonly name = 'HarnessError';
  readonly code: HarnessErrorCode;
  readonly server: string;
  readonly retriable: boolean;
  readonly logFile: string | undefined;
  readonly logTail: readonly string[];

  constructor(code: HarnessErrorCode, message: string, details: HarnessErrorDetails) {
    super(formatMessage(message, details), { cause: details.cause });
    this.code = code;
    this.server = details.server;
    this.retriable = details.retriable;
    this.logFile = details.logFile;
    this.logTail = details.logTail ?? [];
  }
}

function formatMessage(message: string, d: HarnessErrorDetails): string {
  const lines = [`[${d.server}] ${message}`];
  if (d.advice) lines.push(`  fix: ${d.advice}`);
  if (d.logFile) lines.push(`  log: ${d.logFile}`);
  if (d.logTail && d.logTail.length > 0) {
    lines.push(`  last ${d.logTail.length} log lines:`);
    for (const l of d.logTail) lines.push(`    | ${l}`);
  }
  return lines.join('\n');
}

export function isHarnessError(e: unknown, code?: HarnessErrorCode): e is HarnessError {
  if (typeof e !== 'object' || e === null) return false;
  const rec = e as { name?: unknown; code?: unknown };
  return rec.name === 'HarnessError' && (code === undefined || rec.code === code);
}
