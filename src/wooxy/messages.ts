/**
 * The vendor's error messages, verbatim from the "Method Errors" lists of the four reference pages, in one
 * place so the validators, the emulator, the client's classification and the tests cannot drift apart.
 *
 * The pages render the messages inside typographic quotes and with JSON escapes (`\”`, `\/`); the strings here
 * are what a JSON decoder would yield: straight quotes, plain slashes. Where the add and update pages word the
 * same check differently, both wordings are kept and each endpoint answers with its own page's text (the add
 * page's "mustbe" typo included): a pre-check that copies the vendor must copy it exactly.
 */

export type ValidationMode = 'add' | 'update';

export const Messages = {
  // Envelope
  contactListId: 'Argument contactListId must be a non-empty string',
  webHookUri: 'Argument webHookUri must be a valid URI',
  upsert: 'Argument upsert must be a true or false',
  contacts: 'add at least one valid contact to contacts field',
  required: (argument: string) => `Argument ${argument} required`,
  listNotFound: (contactListId: string) => `List with id ${contactListId} not found!`,
  /** Documented on the remove page only; the emulator also uses it for add/update over 100 (see docs/emulator.md). */
  tooManyRecords: (n: number) => `Maximum count of records per transaction is 100, current ${n}`,

  // Contact fields
  contact: 'Argument contact must be a non-empty string filled with valid email, phoneNumber or userId',
  name: 'Argument name must be a string',
  invalidEmail: (email: string) => `invalid RFC2822 email ${email} at email field`,
  email: 'Argument email must be a string',
  phoneNumber: 'Argument phoneNumber must be a string',
  invalidPhone: (phoneNumber: string) => `${phoneNumber} is not a valid E.164 phone number`,
  userId: 'Argument userId must be a string',
  userIdLength: 'Argument userId must be less than 125 symbols',
  boolean: (field: string) => `Argument ${field} can be true or false`,
  variables: 'Argument variables must be an array of arrays with "name" and "value" fields',
  variableNameString: 'name of variable must be a string',
  variableNameEmpty: 'name of variable can not be empty',
  variableReserved: (name: string) => `variable "${name}" is reserved and can not be added as custom variable`,
  variableNameInvalid: (name: string) => `invalid name of variable ${name}`,
  variableDate: (name: string, value: string) => `Variable ${name} type is date, but value is not valid date. Value ${value}`,
  variableNotFound: (name: string) => `Variable ${name} not found in list. Try to add it first`,
  identifiers: (mode: ValidationMode, i: number) =>
    mode === 'add'
      ? `email, phoneNumber or userId must be filled at contact position ${i}`
      : `email, phoneNumber or externalId/userId must be filled at contact position ${i}`,
  firstName: 'Argument firstName must be a string',
  firstNameLength: 'Argument firstName must be a string with max length within 255 characters',
  lastName: (mode: ValidationMode) => (mode === 'add' ? 'Argument lastName mustbe a string' : 'Argument lastName must be a string'),
  lastNameLength: 'Argument lastName must be a string with max length within 255 characters',
  birthday: 'Argument birthday must be a YYYY-MM-DD date',
  language: 'Argument language must be a valid ISO language',
  gender: 'Unknown gender value',
  timezone: 'Argument timezone must be a valid timezone string',
  score: 'Argument score must have a numeric value',
  link: (field: string) => `Argument ${field} must be a valid URL`,
  sourceId: 'Argument sourceId must be a string',
  sourceIdNotFound: (sourceId: string, i: number) => `sourceId ${sourceId} not found in your account at contact position ${i}`,
  /** Update page only; the add page answers a non-string customerSourceId with customerSourceIdFormat. */
  customerSourceId: 'Argument customerSourceId must be a string',
  customerSourceIdFormat: 'Argument customerSourceId must be an alphanumeric string with max length within 40 characters',
  cac: 'Argument CAC must be an array with value and currency fields',
  cacValue: 'CAC value must be a positive float',
  cacCurrency: (currency: string) => `CAC currency ${currency} not allowed. USD, EUR are`,

  // Remove
  emails: 'Argument emails must be a list of emails',
  eachEmail: 'Each email must be a string',
  phoneNumbers: 'Argument phoneNumbers must be a list of phoneNumbers',
  eachPhoneNumber: 'Each phoneNumber must be a string',
  userIds: 'Argument userIds must be a list of userIds',
  eachUserId: 'Each userId must be a string',
  nothingToRemove: 'add at least one contact to remove',

  // Find
  ids: 'Argument ids must be an array of strings',
  idsEmpty: 'Argument ids can not be empty',
  idsCount: 'ids count must be less or equal 100',
  eachId: 'each id must be a non-empty string',
  noMatches: 'No matches found',

  // Service-level
  savingError: 'Request saving error. Please, contact us or try again later',
  internal: 'Internal server error',
  badRequest: 'Bad Request',
  invalidToken: 'Invalid authorization token!',
  noMatchesForToken: (accessToken: string) => `no matches found for access token ${accessToken}`,
  userNotEnabled: (id: string) => `user ${id} not enabled`,
  noDataForKey: (userId: string) => `no data found for key ${userId}`,
  /** The add page writes "$key /$accessToken" (with a space), the others "$key/$accessToken". */
  tokenCheckFailed: (key: string, accessToken: string, mode?: ValidationMode) =>
    `access token check failed for key/secret ${key}${mode === 'add' ? ' ' : ''}/${accessToken}`,
} as const;

/** The header the token travels in; a missing header is answered with `Messages.required(ACCESS_TOKEN_HEADER)`. */
export const ACCESS_TOKEN_HEADER = 'Access-Token';

/**
 * Authorization failures, recognised by their documented shape. The emulator's answer to a missing header
 * ("Argument Access-Token required") is included: the vendor's "Argument {argument} required" would say so too.
 */
export function isAuthorizationMessage(message: string): boolean {
  return (
    message === Messages.invalidToken ||
    message.startsWith('no matches found for access token') ||
    /^user .* not enabled$/.test(message) ||
    message.startsWith('no data found for key') ||
    message.startsWith('access token check failed') ||
    message.toLowerCase() === Messages.required(ACCESS_TOKEN_HEADER).toLowerCase()
  );
}

/** Failures the service reports about itself, not about the request: worth another attempt. */
export function isTransientMessage(message: string): boolean {
  return message === Messages.internal || message.startsWith('Request saving error');
}

/**
 * The pages document the 10-request limit but no message for breaking it. This is the emulator's wording; the
 * client recognises any "too many requests" text, so a rejection answered with HTTP 200 is still a rate limit.
 */
export const tooManyRequests = (limit: number) => `Too many concurrent requests: at most ${limit} are allowed`;

export function isRateLimitMessage(message: string): boolean {
  return /too many (concurrent )?requests/i.test(message);
}

export function isListNotFoundMessage(message: string): boolean {
  return /^List with id .* not found!$/.test(message);
}

/**
 * Rejections about the list's setup rather than one contact: of the documented messages, only "Variable {name}
 * not found in list. Try to add it first" (the variable is missing from the list; the mapping sends it with
 * every contact that has a value). The date-variable and sourceId messages are about one contact's value and
 * stay validation errors, isolated by splitting.
 */
export function isListLevelMessage(message: string): boolean {
  return /^Variable .+ not found in list\. Try to add it first$/.test(message);
}

/** Messages of the pages that are not about the data sent: the service, the account, or the list itself. */
const NOT_DATA: ReadonlySet<string> = new Set([
  'savingError',
  'internal',
  'badRequest',
  'invalidToken',
  'noMatchesForToken',
  'userNotEnabled',
  'noDataForKey',
  'tokenCheckFailed',
  'noMatches',
  'listNotFound',
  'variableNotFound',
]);

const SENTINEL = '\u0001';

/** Each documented data rejection as a pattern: a template's placeholders match any text. */
const REJECTION_PATTERNS: readonly RegExp[] = Object.entries(Messages).flatMap(([name, template]) => {
  if (NOT_DATA.has(name)) return [];
  const texts =
    typeof template === 'string'
      ? [template]
      : (['add', 'update', SENTINEL] as const).map((first) => {
          const f = template as (...args: unknown[]) => string;
          return f(first, ...Array.from({ length: Math.max(0, f.length - 1) }, () => SENTINEL));
        });
  return [...new Set(texts)].map((text) => new RegExp(`^${text.split(SENTINEL).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's'));
});

/**
 * Whether a message is one the pages document as a rejection of the data sent (a field, a contact, the body's
 * shape or size). Only these split a batch and dead-letter the contact they are about; any other
 * `result:false` (an undocumented message, none at all) is the service's trouble and is retried.
 */
export function isDocumentedRejection(message: string): boolean {
  return message !== Messages.required(ACCESS_TOKEN_HEADER) && REJECTION_PATTERNS.some((p) => p.test(message));
}
