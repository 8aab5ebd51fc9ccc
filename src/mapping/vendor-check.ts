import { validateContact } from '../wooxy/validate.js';
import type { ContactCheck } from './mapper.js';

/** The vendor's own rules (src/wooxy/validate.ts), applied to every row before it is queued. */
export const vendorCheck: ContactCheck = (contact) => validateContact(contact, { mode: 'add', position: 0 });
