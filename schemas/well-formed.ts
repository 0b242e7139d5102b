/**
 * Strings must be well-formed Unicode: a UTF-16 surrogate without its partner has no UTF-8 form, so
 * every store past the write side would replace it in its own way (the MongoDB driver with U+FFFD, avsc
 * with the invalid bytes ED A0 80, which MySQL then reads as three U+FFFD) and the write and read
 * models would differ. The write side refuses such commands (`command_invalid`) and the codec such
 * payloads (`payload_invalid`), both with this one check.
 */

// Node >= 20 has String.prototype.isWellFormed; TypeScript declares it only from lib ES2024.
type MaybeWellFormed = string & { isWellFormed(): boolean };

/** With the `u` flag a surrogate pair is one code point, so this matches only a lone half. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Why `s` is not well-formed Unicode, or undefined when it is. */
export function stringProblem(s: string): string | undefined {
  if ((s as MaybeWellFormed).isWellFormed()) return undefined;
  const at = LONE_SURROGATE.exec(s)?.index ?? 0;
  const unit = s.charCodeAt(at).toString(16).toUpperCase();
  return `is not well-formed Unicode (a lone surrogate \\u${unit} at index ${at})`;
}

export interface IllFormedString {
  /** `name`, `lines[2].sku`, `labels["k\ud800"]` (quoted and escaped: a key), `(root)`. */
  readonly path: string;
  /** `is not well-formed Unicode (…)`, or `is a key that is not …`. */
  readonly problem: string;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function keyPath(path: string, key: string): string {
  if (IDENTIFIER.test(key)) return path === '' ? key : `${path}.${key}`;
  // JSON.stringify escapes lone surrogates, so the path is well-formed even when the key is not.
  return `${path}[${JSON.stringify(key)}]`;
}

function entry(path: string, key: string, value: unknown): IllFormedString | undefined {
  const problem = stringProblem(key);
  if (problem !== undefined)
    return { path: keyPath(path, key), problem: `is a key that ${problem}` };
  return illFormedString(value, keyPath(path, key));
}

/**
 * The first string in `value` that is not well-formed Unicode: the value itself, or at any depth an
 * object's keys and values, an array's elements, a Map's keys and values. Buffers, typed arrays and
 * Dates hold no strings and are not entered. Undefined when every string is well-formed.
 */
export function illFormedString(value: unknown, path = ''): IllFormedString | undefined {
  if (typeof value === 'string') {
    const problem = stringProblem(value);
    return problem === undefined ? undefined : { path: path || '(root)', problem };
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = illFormedString(value[i], `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (value instanceof Map) {
    for (const [k, v] of value as Map<unknown, unknown>) {
      const found =
        typeof k === 'string' ? entry(path, k, v) : illFormedString(v, `${path}[${String(k)}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (ArrayBuffer.isView(value) || value instanceof Date) return undefined;
  for (const [k, v] of Object.entries(value)) {
    const found = entry(path, k, v);
    if (found) return found;
  }
  return undefined;
}
