/**
 * What `npm run demo` tells the terminal, apart from its own progress lines: which log records reach
 * it (and how they read there), and what it says when it cannot listen. Pure functions: demo/main.ts
 * does the writing.
 */

const LEVELS: Readonly<Record<number, string>> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/**
 * One pino JSON line (the demo log's errors) as the terminal shows it, or undefined to leave it to
 * demo.log only. kafkajs's own lines go nowhere else: it logs every error answer of the broker at
 * error while it retries (a topic's metadata not yet on every broker just after it was created, a
 * group coordinator still loading on a fresh broker), and the relay and sink log what came of it.
 */
export function terminalLine(json: string): string | undefined {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  if (record.component === 'kafkajs') return undefined;
  const level = typeof record.level === 'number' ? (LEVELS[record.level] ?? 'error') : 'error';
  const component = typeof record.component === 'string' ? record.component : 'demo';
  const msg = typeof record.msg === 'string' ? record.msg : '';
  const err = record.err as { message?: unknown } | undefined;
  const cause = typeof err?.message === 'string' ? `: ${err.message}` : '';
  return `${level} [${component}] ${msg}${cause} (details in demo.log)\n`;
}

/** Why the web app cannot listen on `host:port`, naming the variables that choose it. */
export function listenProblem(
  host: string,
  port: number,
  code: string | undefined,
  portGiven: boolean,
): string {
  const where = `${host}:${port}`;
  const which = `DEMO_PORT=${port}${portGiven ? '' : ' (the default)'}`;
  if (code === 'EADDRINUSE') {
    return [
      `${which}: ${where} is already in use (another demo still running?).`,
      `Stop what listens there (\`ss -ltnp 'sport = :${port}'\`) or choose another port:`,
      `  DEMO_PORT=${port === 65535 ? 3001 : port + 1} npm run demo   (DEMO_PORT=0 picks a free one)`,
    ].join('\n');
  }
  return [
    `${which}, DEMO_HOST=${host}: cannot listen on ${where} (${code ?? 'unknown error'}).`,
    'Choose another address or port: DEMO_HOST=127.0.0.1 DEMO_PORT=0 npm run demo picks a free port.',
  ].join('\n');
}
