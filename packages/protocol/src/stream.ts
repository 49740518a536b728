/**
 * The record stream of a sealed envelope (spec/envelope.md, "Record stream").
 *
 * A STREAM-style construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
 * Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", 2015; as used by age):
 * each record is sealed with ChaCha20-Poly1305 under the envelope's stream key and the nonce
 * `u88be(counter) || lastFlag`. The counter detects reordering, duplication and dropped records;
 * the last flag detects truncation; the per-envelope key detects records swapped between
 * envelopes. Each plaintext starts with a type byte, so the reader knows what it holds.
 *
 * On the wire a record is `u32be(len(ciphertext)) || ciphertext`.
 */
import { readU32be, u32be } from './bytes.js';
import { DecodeError, OpenError } from './errors.js';
import { AeadId, getProvider } from './provider.js';

export const RecordType = {
  Header: 1,
  Body: 2,
  Padding: 3,
  Trailer: 4,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Body bytes per record (all body records but the last carry exactly this many). */
export const CHUNK_SIZE = 65536;
/** The largest header record plaintext (sender chain, metadata, distribution list). */
export const MAX_HEADER_SIZE = 1 << 20;
export const TAG_LENGTH = 16;
/** Framing + tag + type byte: what one record costs beyond its data. */
export const RECORD_OVERHEAD = 4 + TAG_LENGTH + 1;
export const MAX_RECORD_CIPHERTEXT = MAX_HEADER_SIZE + 1 + TAG_LENGTH;

const MAX_COUNTER = 2 ** 48; // far below 2^88; a 64 KiB-chunk stream this long would be 16 EiB.

export function recordNonce(counter: number, last: boolean): Uint8Array {
  const nonce = new Uint8Array(12);
  // Counter in bytes 0..10 big-endian; JS numbers are exact up to 2^53, far more than needed.
  let c = counter;
  for (let i = 10; i >= 0 && c > 0; i--) {
    nonce[i] = c % 256;
    c = Math.floor(c / 256);
  }
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Seals records in order. */
export class RecordWriter {
  private counter = 0;
  private closed = false;
  constructor(private readonly key: Uint8Array) {}

  write(type: RecordType, data: Uint8Array, last = false): Uint8Array {
    if (this.closed) throw new OpenError('record stream already closed');
    if (this.counter >= MAX_COUNTER) throw new OpenError('record counter exhausted');
    const pt = new Uint8Array(1 + data.length);
    pt[0] = type;
    pt.set(data, 1);
    const ct = getProvider().aeadSeal(AeadId.ChaCha20Poly1305, this.key, recordNonce(this.counter++, last), pt, new Uint8Array(0));
    if (last) this.closed = true;
    const out = new Uint8Array(4 + ct.length);
    out.set(u32be(ct.length), 0);
    out.set(ct, 4);
    return out;
  }
}

export interface OpenedRecord {
  type: RecordType;
  data: Uint8Array;
  last: boolean;
}

/**
 * Opens records from a byte stream fed in arbitrary pieces. Memory is bounded by one record.
 * The reader does not know which record is last until it sees the end of the input, so it
 * tries the non-final nonce first and then the final one; exactly one can verify.
 */
export class RecordReader {
  private counter = 0;
  private buffered: Uint8Array[] = [];
  private bufferedLength = 0;
  private finished = false;

  constructor(private readonly key: Uint8Array) {}

  /** Feeds bytes; returns every record completed by them. */
  push(bytes: Uint8Array): OpenedRecord[] {
    if (bytes.length > 0) {
      this.buffered.push(bytes);
      this.bufferedLength += bytes.length;
    }
    const out: OpenedRecord[] = [];
    for (;;) {
      const rec = this.next();
      if (rec === undefined) return out;
      out.push(rec);
    }
  }

  /** Called at the end of input: anything left over means truncation or trailing bytes. */
  end(): void {
    if (this.bufferedLength !== 0) throw new OpenError(this.finished ? 'bytes after the final record' : 'truncated record');
    if (!this.finished) throw new OpenError('truncated: no final record');
  }

  private peek(n: number): Uint8Array {
    if (this.buffered.length > 1 && (this.buffered[0] as Uint8Array).length < n) {
      const all = new Uint8Array(this.bufferedLength);
      let o = 0;
      for (const b of this.buffered) {
        all.set(b, o);
        o += b.length;
      }
      this.buffered = [all];
    }
    return (this.buffered[0] as Uint8Array).subarray(0, n);
  }

  private consume(n: number): void {
    const first = this.buffered[0] as Uint8Array;
    if (first.length === n) this.buffered.shift();
    else this.buffered[0] = first.subarray(n);
    this.bufferedLength -= n;
  }

  private next(): OpenedRecord | undefined {
    if (this.bufferedLength < 4) return undefined;
    if (this.finished) throw new OpenError('bytes after the final record');
    const len = readU32be(this.peek(4), 0);
    if (len < TAG_LENGTH + 1 || len > MAX_RECORD_CIPHERTEXT) throw new DecodeError(`record length ${len} out of range`);
    if (this.bufferedLength < 4 + len) return undefined;
    const ct = this.peek(4 + len).subarray(4);
    const p = getProvider();
    const none = new Uint8Array(0);
    let last = false;
    let pt = p.aeadOpen(AeadId.ChaCha20Poly1305, this.key, recordNonce(this.counter, false), ct, none);
    if (pt === null) {
      pt = p.aeadOpen(AeadId.ChaCha20Poly1305, this.key, recordNonce(this.counter, true), ct, none);
      last = true;
    }
    if (pt === null) throw new OpenError(`record ${this.counter} does not authenticate`);
    this.consume(4 + len);
    this.counter++;
    if (last) this.finished = true;
    const type = pt[0] as number;
    if (type < RecordType.Header || type > RecordType.Trailer) throw new OpenError(`record ${this.counter - 1} has unknown type`);
    return { type: type as RecordType, data: pt.subarray(1), last };
  }
}

export function recordFramingLength(dataLength: number): number {
  return RECORD_OVERHEAD + dataLength;
}
