/** Secrets never reach logs: URLs lose their passwords, known secret fields their values. */

const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]+:)[^@/\s]+@/gi;

/** `mysql://user:secret@host/db` -> `mysql://user:***@host/db`, anywhere in a string. */
export function redactUrls(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1***@');
}

/** pino `redact` paths for the settings objects we log. */
export const REDACT_PATHS = [
  '*.password',
  '*.mysqlUrl',
  '*.mysqlSinkUrl',
  '*.mongodbUri',
  'password',
  'mysqlUrl',
  'mysqlSinkUrl',
  'mongodbUri',
];

/** A copy of a config object safe to log: strings with URLs redacted, secret-looking keys masked. */
export function safeForLog(config: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config) as [string, unknown][]) {
    if (/password|secret|token/i.test(k)) out[k] = '***';
    else if (typeof v === 'string') out[k] = redactUrls(v);
    else if (Array.isArray(v))
      out[k] = (v as unknown[]).map((x) => (typeof x === 'string' ? redactUrls(x) : x));
    else out[k] = v;
  }
  return out;
}
