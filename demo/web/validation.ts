/**
 * The HTTP API's request bodies, validated with zod before anything is written. A bad request gets
 * 400 with one message per field (`fields`); nothing reaches MongoDB or MySQL.
 */
import { z } from 'zod';

/** Ids become MySQL keys (VARCHAR(64)) and URL path segments: a safe alphabet only. */
export const ID = /^[A-Za-z0-9_-]{1,64}$/;
const id = z.string().regex(ID, 'use 1 to 64 letters, digits, - or _');
const commandId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{8,100}$/, 'use 8 to 100 letters, digits, - or _')
  .optional();
const expectedVersion = z.number().int('must be a whole number').min(0).optional();
/** Same rule as the domain's (one @, no spaces, a dot in the domain), checked here to name the field. */
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const name = z
  .string('required')
  .trim()
  .min(1, 'must not be empty')
  .max(255, 'at most 255 characters');
const email = z
  .string('required')
  .trim()
  .max(255, 'at most 255 characters')
  .regex(EMAIL, 'is not an email address');

export const CreateCustomerBody = z.strictObject({
  commandId,
  customerId: id.optional(),
  name,
  email,
});

export const UpdateCustomerBody = z
  .strictObject({ commandId, expectedVersion, name: name.optional(), email: email.optional() })
  .refine((b) => b.name !== undefined || b.email !== undefined, {
    message: 'give a new name or a new email',
    path: ['name'],
  });

/** DELETE, place: a command id and the version the user saw, both optional. */
export const VersionedBody = z.strictObject({ commandId, expectedVersion });

export const CreateOrderBody = z.strictObject({
  commandId,
  orderId: id.optional(),
  customerId: id,
});

export const AddLineBody = z.strictObject({
  commandId,
  expectedVersion,
  lineId: id.optional(),
  sku: z
    .string('required')
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'use 1 to 64 letters, digits, ., - or _'),
  quantity: z
    .number('must be a number')
    .int('must be a whole number')
    .min(1, 'at least 1')
    .max(10_000, 'at most 10000'),
  unitPriceCents: z
    .number('must be a number')
    .int('must be a whole number of cents')
    .min(0, 'must not be negative')
    .max(100_000_000, 'at most 100000000'),
});

export const CancelOrderBody = z.strictObject({
  commandId,
  expectedVersion,
  reason: z.string().trim().max(255, 'at most 255 characters').default(''),
});

export const RedriveBody = z.strictObject({
  target: z
    .string('required')
    .trim()
    .min(1, 'must not be empty')
    .max(300, 'at most 300 characters'),
});

export const ReplayBody = z.strictObject({ confirm: z.literal(true, 'confirm with true') });

export const VerifyBody = z.strictObject({ repair: z.boolean('must be true or false') });

export const TamperBody = z.strictObject({});

/** Field -> messages, `(body)` for problems with the body as a whole. */
export type FieldErrors = Record<string, string[]>;

/**
 * One entry per field, each unknown key its own. Field names come from the request body, so they
 * are collected in a Map: a key like `toString` or `__proto__` is a field like any other, never an
 * `Object.prototype` member (Object.fromEntries defines own properties, so nothing is polluted).
 */
export function fieldErrors(error: z.ZodError): FieldErrors {
  const out = new Map<string, string[]>();
  const add = (key: string, message: string): void => {
    const messages = out.get(key);
    if (messages) messages.push(message);
    else out.set(key, [message]);
  };
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        add([...issue.path, key].map(String).join('.'), 'is not a known field');
    } else {
      add(issue.path.map(String).join('.') || '(body)', issue.message);
    }
  }
  return Object.fromEntries(out);
}
