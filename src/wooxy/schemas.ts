/**
 * Response shapes the client accepts. Strict about what it relies on (result, requestId, statuses, error
 * codes), lenient about the rest: unknown keys pass, absent identifiers become null.
 */
import { z } from 'zod';
import type { RequestStatus } from './types.js';

/** PHP encodes an empty associative array as `[]`; accept it wherever the pages show an object map. */
const emptyArrayAsObject = (v: unknown) => (Array.isArray(v) && v.length === 0 ? {} : v);

const nullableString = z
  .union([z.string(), z.number()])
  .nullish()
  .transform((v) => (v === undefined || v === null ? null : String(v)));

const resultContact = z.object({
  id: nullableString,
  email: nullableString,
  phone: nullableString,
  userId: nullableString,
});

const contactError = z.object({
  error: z.string().min(1),
  contact: resultContact,
  humanError: z.string().nullish().transform((v) => v ?? ''),
});

export const requestStatusSchema = z.object({
  id: z.string().min(1),
  source: z.enum(['API_CREATE', 'API_UPDATE', 'API_REMOVE']),
  status: z.enum(['new', 'done', 'fail']),
  webHookUri: z.string().nullish().transform((v) => v ?? null),
  createdAt: z.string(),
  updatedAt: z.string(),
  results: z
    .preprocess(
      emptyArrayAsObject,
      z.object({
        errors: z.array(contactError).nullish().transform((v) => v ?? []),
        success: z.array(resultContact).nullish().transform((v) => v ?? []),
      }),
    )
    .nullish()
    .transform((v) => v ?? { errors: [], success: [] }),
}) satisfies z.ZodType<RequestStatus, unknown>;

export const acceptedSchema = z.object({
  result: z.literal(true),
  requestId: z.string().min(1),
  errors: z.array(z.string()).optional(),
});

export const findSchema = z.object({
  result: z.literal(true),
  requests: z.preprocess(emptyArrayAsObject, z.record(z.string(), requestStatusSchema)),
  errors: z.array(z.string()).optional(),
});

/** A request-level failure; messages that are not strings are stringified rather than lost. */
export const failureSchema = z.object({
  result: z.literal(false),
  requestId: z.string().optional(),
  errors: z
    .array(z.unknown())
    .optional()
    .transform((v) => (v ?? []).map((m) => (typeof m === 'string' ? m : JSON.stringify(m)))),
});
