/**
 * Map keys for 16-byte ids (mailboxes, messages): one character per byte, so they are cheap to
 * make and to hash. Never for display (use hex).
 */
export const idKey = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');

/** The map key of a mailbox id. */
export const mailboxKey = idKey;
/** The map key of a message id. */
export const messageKey = idKey;
