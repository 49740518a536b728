/**
 * The relay's storage, behind one small interface (spec/relay.md, "Storage"). The SQLite store
 * (sqlite-store.ts) is the default; a PostgreSQL store can implement the same interface so that
 * several relay nodes share one database.
 *
 * Every write resolves only after it is durably committed, except `storeMessage`, which resolves
 * as soon as the store has decided (stored, duplicate or mailbox full) and says when the message
 * is durable with a second promise. Implementations group writes into transactions (group
 * commit); callers never wait for a commit per message.
 */
import type { RelayPrekey } from '@valise/protocol';

/** One stored delivery, as read back for a mailbox. */
export interface StoredDelivery {
  /** Position in the relay's store order; increases with every stored delivery, never reused. */
  seq: number;
  messageId: Uint8Array;
  /** Map key of `messageId` (keys.ts). */
  messageKey: string;
  /** `u32be(P) || prelude` holding only this mailbox's entry. */
  prelude: Uint8Array;
  /** The shared record stream (the same bytes for every mailbox of the message). */
  records: Uint8Array;
  /** Seconds since the epoch. */
  storedAt: number;
}

export interface StoreMessageInput {
  /**
   * The message id, derived from the sender and its client message id (`relayMessageId`): a
   * message with an id already stored (or remembered as a tombstone) is answered as a duplicate.
   */
  messageId: Uint8Array;
  records: Uint8Array;
  deliveries: { mailbox: Uint8Array; prelude: Uint8Array }[];
  storedAt: number;
  expiresAt: number;
  /** Until when the message id is remembered after the last delivery is acknowledged. */
  dedupeUntil: number;
  limits: { maxMessages: number; maxBytes: number };
}

export type StoreMessageResult =
  | {
      status: 'stored';
      messageId: Uint8Array;
      /** Map key of `messageId` (keys.ts). */
      messageKey: string;
      storedAt: number;
      seqs: number[];
      /**
       * Resolves once the message is durably committed (rejects if it never will be). Its
       * deliveries may be pushed before that, since recipients deduplicate; `Stored` may not.
       */
      durable: Promise<void>;
    }
  /** Already stored or remembered; `durable` resolves once the earlier copy is committed. */
  | { status: 'duplicate'; messageId: Uint8Array; durable: Promise<void> }
  | { status: 'mailbox-full'; mailbox: Uint8Array; limit: 'messages' | 'bytes' };

export type PutPrekeysResult = { status: 'ok'; count: number } | { status: 'limit'; count: number };

export interface TakenPrekeys {
  oneTime?: RelayPrekey;
  signed?: RelayPrekey;
  /** One-time prekeys left after this one was taken. */
  remaining: number;
}

/** A verified directory entry, with the fields the relay searches on. */
export interface DirectoryRecord {
  deviceCertId: Uint8Array;
  personId: Uint8Array;
  personCertId: Uint8Array;
  /** Lower-cased for case-insensitive search. */
  name: string;
  unit: string;
  personCert: Uint8Array;
  deviceCert: Uint8Array;
  publishedAt: number;
}

export type DirectoryLookupQuery = { personId: Uint8Array } | { deviceCertId: Uint8Array } | { text: string };

export interface StoreStats {
  /** Messages with a delivery waiting. */
  messages: number;
  deliveries: number;
  mailboxes: number;
  /** Message ids remembered for deduplication, where the store keeps them in memory. */
  rememberedIds?: number;
  /** Ids forgotten before their window ended because of a memory cap. */
  idsForgottenEarly?: number;
}

export interface RelayStore {
  /**
   * Stores the records once and one delivery per mailbox, atomically, or refuses all of it.
   * Answers with the decision (at once when the store can decide in memory, else a promise);
   * a stored message's `durable` resolves at its commit.
   */
  storeMessage(input: StoreMessageInput): StoreMessageResult | Promise<StoreMessageResult>;
  /** Deliveries of a mailbox with `seq > afterSeq` that have not expired at `now`, in seq order. */
  readMailbox(mailbox: Uint8Array, afterSeq: number, limit: number, now: number): Promise<StoredDelivery[]>;
  /**
   * Deletes this mailbox's deliveries of these messages (others' are untouched) and returns how
   * many; a message whose last delivery goes keeps only its id until its dedupe window ends.
   */
  ack(mailbox: Uint8Array, messageIds: Uint8Array[], now: number): Promise<number>;
  putPrekeys(mailbox: Uint8Array, prekeys: RelayPrekey[], signed: RelayPrekey | undefined, maxPrekeys: number): Promise<PutPrekeysResult>;
  /** Removes and returns the lowest-id one-time prekey (each handed out at most once) and the signed prekey. */
  takePrekey(mailbox: Uint8Array): Promise<TakenPrekeys>;
  countPrekeys(mailbox: Uint8Array): Promise<{ count: number; hasSigned: boolean }>;
  putDirectoryEntry(entry: DirectoryRecord): Promise<void>;
  lookupDirectory(query: DirectoryLookupQuery, limit: number): Promise<DirectoryRecord[]>;
  /** Stores the list if its sequence is higher than the stored one's; returns whether it did. */
  putRevocationList(bytes: Uint8Array, sequence: number): Promise<boolean>;
  getRevocationList(): Promise<Uint8Array | undefined>;
  /** Deletes deliveries and messages that expired at `now`, and message ids past their dedupe window. */
  expire(now: number): Promise<{ deliveries: number; messages: number }>;
  stats(): Promise<StoreStats>;
  /** Resolves once every write queued so far is committed. */
  flush(): Promise<void>;
  /** Commits what is queued, then releases the storage. */
  close(): Promise<void>;
}

/** Called by stores after each commit, for metrics. */
export type CommitObserver = (operations: number, seconds: number) => void;
