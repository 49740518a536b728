/**
 * Map keys for ids (mailboxes, messages, certificates): one character per byte, so they are cheap to
 * make and to hash. Never for display (use hex).
 *
 * Built from the bytes directly: going through `id.buffer` (as `Buffer.from` does) would force
 * V8 to move a small typed array's bytes off the heap into a buffer of their own, per id.
 */
export const idKey = (id: Uint8Array): string => String.fromCharCode.apply(null, id as unknown as number[]);

/** The map key of a mailbox id. */
export const mailboxKey = idKey;
/** The map key of a message id. */
export const messageKey = idKey;
