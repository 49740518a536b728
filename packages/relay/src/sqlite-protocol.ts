/** Messages between the SQLite store (main thread) and its writer thread (sqlite-worker.ts). */
import type { RelayPrekey } from '@valise/protocol';
import type { DirectoryRecord, StoreMessageInput } from './store.js';

export type WriteOp =
  | { op: 'store'; id: number; input: StoreMessageInput }
  | { op: 'ack'; id: number; mailbox: Uint8Array; messageIds: Uint8Array[]; now: number }
  | { op: 'putPrekeys'; id: number; mailbox: Uint8Array; prekeys: RelayPrekey[]; signed?: RelayPrekey; max: number }
  | { op: 'takePrekey'; id: number; mailbox: Uint8Array }
  | { op: 'putDirectory'; id: number; entry: DirectoryRecord }
  | { op: 'putRevocation'; id: number; bytes: Uint8Array; sequence: number }
  | { op: 'expire'; id: number; now: number }
  | { op: 'flush'; id: number };

/**
 * The result of a 'store' operation, kept small because it crosses threads: the seq of each
 * delivery, 'duplicate', or the limit a route would exceed and that route's index.
 */
export type StoreResultWire = number[] | 'duplicate' | ['messages' | 'bytes', number];

export type WorkerRequest = { ops: WriteOp[] } | { close: true };

export type OpResult = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

export type WorkerResponse = { ready: true } | { fatal: string } | { results: OpResult[]; ops: number; seconds: number } | { closed: true };

export interface WorkerConfig {
  path: string;
  /** Most operations in one transaction. */
  maxBatch: number;
  /** Extra time to gather operations before a commit, in ms (0: commit as soon as the previous commit is done). */
  commitDelayMs: number;
}
