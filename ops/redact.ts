/** Secrets never reach logs: URLs lose their passwords, known secret fields their values. */

const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]+:)[^@/\s]+@/gi;

/** Keys whose values are secrets whatever they hold (`password`, `apiToken`, `sasl.secret`…). A
 * bare `token` is not one: the relay logs its lease's fencing token. */
const SECRET_KEY =
  /(password|passwd|secret|credentials?|api_?key|api_?token|auth_?token|access_?token)$/i;

/** Field names SECRET_KEY matches, for pino's `redact` paths at the top level of a line. */
export const SECRET_FIELDS = [
  'password',
  'passwd',
  'secret',
  'credentials',
  'apiKey',
  'apiToken',
  'authToken',
  'accessToken',
];

/** Nesting followed into logged objects; deeper values are logged as they are. */
const MAX_DEPTH = 6;

/** `mysql://user:secret@host/db` -> `mysql://user:***@host/db`, anywhere in a string. */
export function redactUrls(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1***@');
}

const isPlain = (v: object): boolean => {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
};

/** A copy safe to log: strings with URLs redacted, secret-looking keys masked, in plain objects and
 * arrays. Other objects (errors, buffers, dates) are returned as they are. */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactUrls(value);
  if (typeof value !== 'object' || value === null || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((v: unknown) => redactValue(v, depth + 1));
  if (!isPlain(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value) as [string, unknown][])
    out[k] = redactField(k, v, depth + 1);
  return out;
}

/** The value of field `key`, safe to log. */
export function redactField(key: string, value: unknown, depth = 0): unknown {
  return SECRET_KEY.test(key) && value !== undefined && value !== null
    ? '***'
    : redactValue(value, depth);
}

/** A copy of a config object safe to log. */
export function safeForLog(config: object): Record<string, unknown> {
  return redactValue({ ...config }) as Record<string, unknown>;
}
