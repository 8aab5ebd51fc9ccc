/**
 * The Wooxy contact fields a column can feed, with the kind of conversion each needs. `cac` and `variables`
 * have their own shapes and are configured apart. Source: the contacts/add and contacts/update pages.
 */
/**
 * text: NULL clears it (''); code: a coded string that NULL leaves out, as '' would be invalid; language and
 * timezone: codes with a conversion of their own (see locale.ts).
 */
export type FieldKind = 'text' | 'code' | 'language' | 'timezone' | 'identifier' | 'boolean' | 'date' | 'gender' | 'number' | 'url';

export const CONTACT_FIELDS = {
  userId: 'identifier',
  email: 'identifier',
  phoneNumber: 'identifier',
  name: 'text',
  firstName: 'text',
  lastName: 'text',
  active: 'boolean',
  emailSubscribe: 'boolean',
  smsSubscribe: 'boolean',
  desktopWebPushSubscribe: 'boolean',
  mobileWebPushSubscribe: 'boolean',
  telegramSubscribe: 'boolean',
  viberSubscribe: 'boolean',
  contactBirthday: 'date',
  contactLanguage: 'language',
  contactGender: 'gender',
  contactTimezone: 'timezone',
  contactScore: 'number',
  avatarLink: 'url',
  facebookLink: 'url',
  instagramLink: 'url',
  linkedInLink: 'url',
  twitterLink: 'url',
  tiktokLink: 'url',
  sourceId: 'code',
  customerSourceId: 'code',
} as const satisfies Record<string, FieldKind>;

export type ContactFieldName = keyof typeof CONTACT_FIELDS;

/** The three identifiers Wooxy finds a contact by; a contact needs at least one. */
export const IDENTIFIER_FIELDS = ['userId', 'email', 'phoneNumber'] as const;
export type IdentifierField = (typeof IDENTIFIER_FIELDS)[number];
