/**
 * The Wooxy API v3 wire types for the four endpoints this project uses, as the vendor's reference pages
 * describe them (their examples and error lists, as data: test/fixtures/wooxy-pages.ts). These are the
 * shapes on the wire: no defaults filled in, no normalisation. Where the pages contradict themselves the
 * type admits both spellings (see the comments).
 */

export const DEFAULT_BASE_URL = 'https://api.wooxy.com/v3';

/** The vendor's hard limits, shared by the client (checked before sending) and the emulator (checked on receipt). */
export const WooxyLimits = {
  /** Contacts per contacts/add or contacts/update call. */
  CONTACTS_PER_CALL: 100,
  /** emails + phoneNumbers + userIds per contacts/remove call. */
  RECORDS_PER_REMOVE: 100,
  /** ids per request/find call. */
  IDS_PER_FIND: 100,
  /** Concurrent requests per account, all endpoints together. */
  CONCURRENT_REQUESTS: 10,
  /** Request statuses are kept this long; request/find knows nothing of older ones. */
  RETENTION_DAYS: 7,
} as const;

export type Endpoint = 'contacts/add' | 'contacts/update' | 'contacts/remove' | 'request/find';
export const ENDPOINTS: readonly Endpoint[] = ['contacts/add', 'contacts/update', 'contacts/remove', 'request/find'];

/** ISO/IEC 5218, or one of the strings the pages list (compared case-insensitively). */
export type GenderValue = 0 | 1 | 2 | 9 | string;

export interface WooxyVariable {
  /** Latin lowerCamelCase, no digits; the variable must already exist on the list. */
  name: string;
  /** A string, or `YYYY-MM-DD` for a date-typed variable. */
  value: string;
}

export interface WooxyCac {
  /** "positive float"; the pages' examples send both `2.05` and `"2.05"`. */
  value: number | string;
  currency: 'EUR' | 'USD';
}

/** Every documented contact field. Booleans default to false on the vendor's side; all fields are optional. */
export interface WooxyContact {
  name?: string;
  /** RFC 2822. */
  email?: string;
  /** E.164. */
  phoneNumber?: string;
  /** Fewer than 125 symbols. */
  userId?: string;
  active?: boolean;
  emailSubscribe?: boolean;
  smsSubscribe?: boolean;
  desktopWebPushSubscribe?: boolean;
  mobileWebPushSubscribe?: boolean;
  telegramSubscribe?: boolean;
  viberSubscribe?: boolean;
  /** At most 255 characters. */
  firstName?: string;
  /** At most 255 characters. */
  lastName?: string;
  /** `YYYY-MM-DD`. */
  contactBirthday?: string;
  /** ISO 639-1. */
  contactLanguage?: string;
  contactGender?: GenderValue;
  /** An IANA zone name such as `Europe/Tallinn` (the pages say "ISO 8601" but show a zone name). */
  contactTimezone?: string;
  contactScore?: number | string | null;
  avatarLink?: string;
  facebookLink?: string;
  instagramLink?: string;
  linkedInLink?: string;
  twitterLink?: string;
  tiktokLink?: string;
  /** A source id known to the Wooxy account; wins over customerSourceId when both are given. */
  sourceId?: string;
  /** Alphanumeric (underscore admitted), at most 40 characters. */
  customerSourceId?: string;
  cac?: WooxyCac | null;
  variables?: WooxyVariable[] | null;
}

export interface AddContactsRequest {
  contactListId: string;
  webHookUri?: string;
  contacts: WooxyContact[];
}

export interface UpdateContact extends WooxyContact {
  /** The identifier (userId, email or phoneNumber) that finds the contact to update. */
  contact: string;
}

export interface UpdateContactsRequest {
  contactListId: string;
  webHookUri?: string;
  /** Create the contact when `contact` finds none; the vendor's default is false. */
  upsert?: boolean;
  contacts: UpdateContact[];
}

export interface RemoveContactsRequest {
  contactListId: string;
  webHookUri?: string;
  emails?: string[];
  phoneNumbers?: string[];
  userIds?: string[];
}

export interface FindRequestsRequest {
  ids: string[];
}

/** What add, update and remove answer when the request was validated and queued. */
export interface AcceptedResponse {
  result: true;
  requestId: string;
  /** Present (and empty) on add and update; absent on remove. */
  errors?: string[];
}

/** A request-level failure. add/update/remove carry a requestId; request/find does not. */
export interface FailureResponse {
  result: false;
  requestId?: string;
  errors: string[];
}

export type RequestSource = 'API_CREATE' | 'API_UPDATE' | 'API_REMOVE';
export type RequestStatusCode = 'new' | 'done' | 'fail';

export const CONTACT_ERROR_CODES = [
  'ERR_EMPTY_IDENTIFIERS',
  'ERR_CONTACT_EXISTS',
  'ERR_CONTACT_DUPLICATION_ATTEMPT',
  'ERR_SYSTEM_ERROR',
  'ERR_CONTACT_NOT_EXISTS',
  'ERR_INVALID_VARIABLE_NAME',
] as const;
export type ContactErrorCode = (typeof CONTACT_ERROR_CODES)[number];

/** A contact as request results name it: note `phone`, not `phoneNumber`. Unknown values are null. */
export interface ResultContact {
  id: string | null;
  email: string | null;
  phone: string | null;
  userId: string | null;
}

export function isContactErrorCode(code: string): code is ContactErrorCode {
  return (CONTACT_ERROR_CODES as readonly string[]).includes(code);
}

export interface ContactError {
  /**
   * One of the documented codes; a code the pages do not list is passed through rather than failing the
   * whole answer (reconciliation treats it as an unexplained failure; see isContactErrorCode).
   */
  error: ContactErrorCode | (string & {});
  contact: ResultContact;
  humanError: string;
}

export interface RequestStatus {
  id: string;
  source: RequestSource;
  status: RequestStatusCode;
  webHookUri: string | null;
  /** `YYYY-MM-DD HH:mm:ss`. */
  createdAt: string;
  /** `YYYY-MM-DD HH:mm:ss`. */
  updatedAt: string;
  results: {
    errors: ContactError[];
    success: ResultContact[];
  };
}

export interface FindResponse {
  result: true;
  requests: Record<string, RequestStatus>;
  errors?: string[];
}

/** The client's answer to request/find: the statuses found, and the ids the service knows nothing of. */
export interface FindResult {
  requests: Record<string, RequestStatus>;
  /** Ids not in the answer: unknown, or older than the 7-day retention. */
  missing: string[];
}
