/**
 * Messages between the SQLite store (main thread) and its writer thread (sqlite-worker.ts).
 *
 * Mail goes as batches in a compact binary form (a few typed arrays, the bytes of a big batch
 * moved rather than copied): a structured clone of an object per message would cost more than
 * the SQL.
 */
import type { RelayPrekey } from '@valise/protocol';
import type { DirectoryRecord } from './store.js';

/** Operations other than mail: rare, so plain objects; each has its own result. */
export type WriteOp =
  | { op: 'putPrekeys'; id: number; mailbox: Uint8Array; prekeys: RelayPrekey[]; signed?: RelayPrekey; max: number }
  | { op: 'takePrekey'; id: number; mailbox: Uint8Array }
  | { op: 'putDirectory'; id: number; entry: DirectoryRecord }
  | { op: 'putRevocation'; id: number; bytes: Uint8Array; sequence: number }
  | { op: 'flush'; id: number };

/** Numbers per inserted message in {@link MailBatch.inserts}. */
export const INSERT_FIELDS = 6;

/**
 * Everything one transaction writes, in this order: new messages, acknowledged deliveries of
 * messages that keep others, deleted messages, the batch's message ids for deduplication, the
 * end of dedupe windows, the seq high-water mark, then the other operations.
 */
export interface MailBatch {
  /**
   * Per new message, {@link INSERT_FIELDS} numbers: row, storedAt, expiresAt, dedupeUntil,
   * routes length, records length. The bytes (16-byte id, routes, records, in that order per
   * message) follow one another in `bytes`.
   */
  inserts: Float64Array;
  bytes: Uint8Array;
  /** Seqs to record in `acked`. */
  acked: Float64Array;
  /**
   * Deleted messages as runs of adjacent rows: per run, its first row, the row after its last
   * message's last seq (so `acked` rows in between go too), and 1 if any of its messages had
   * more than one route (only those can have `acked` rows), else 0.
   */
  deleted: Float64Array;
  /** 16-byte ids of the batch's new messages, remembered until `seenUntil`. */
  seenIds: Uint8Array;
  seenUntil: number;
  /** Forget dedupe rows whose window ended at or before this time (0: none). */
  forgetBefore: number;
  nextSeq: number;
  ops: WriteOp[];
}

export type WorkerRequest = { batch: MailBatch } | { close: true };

export type OpResult = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

export type WorkerResponse =
  | { ready: true }
  | { fatal: string }
  /** The oldest `batches` batches not yet reported are committed, in one transaction. */
  | { committed: true; batches: number; results: OpResult[]; writes: number; seconds: number }
  | { failed: string }
  | { closed: true };

export interface WorkerConfig {
  path: string;
}
