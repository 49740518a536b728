/**
 * The encrypted stream of a sealed envelope (spec/envelope.md, "Stream").
 *
 * Two layers:
 * - **Chunks.** The plaintext stream P is cut into chunks of exactly {@link CHUNK_SIZE} bytes,
 *   the last one 1..CHUNK_SIZE bytes, each sealed with ChaCha20-Poly1305 under the envelope's
 *   stream key with nonce `u88be(counter) || lastFlag` (the STREAM construction of Hoang,
 *   Reyhanitabar, Rogaway and Vizár, as age uses it). The counter detects reordering,
 *   duplication and dropped chunks; the last flag detects truncation; the per-envelope key
 *   detects chunks swapped between envelopes. Chunks carry no length prefix, so the ciphertext
 *   shows only its total length, which the sealer pads to a Padmé bucket.
 * - **Frames** inside P: `type (1 byte) || u32be(length) || data`, in the order
 *   header, body*, padding?, trailer.
 *
 * A reader cannot know that a full-size chunk is the last until it sees the end of the input,
 * so it holds back one chunk: memory is bounded by one chunk plus the frame being assembled.
 */
import { u32be } from './bytes.js';
import { ArgumentError, OpenError } from './errors.js';
import { AeadId, getProvider } from './provider.js';

export const CHUNK_SIZE = 65536;
export const TAG_LENGTH = 16;
export const CHUNK_CIPHERTEXT_SIZE = CHUNK_SIZE + TAG_LENGTH;
export const FRAME_HEADER_LENGTH = 5;

export const FrameType = {
  Header: 1,
  Body: 2,
  Padding: 3,
  Trailer: 4,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const MAX_COUNTER = 2 ** 48; // 2^48 chunks of 64 KiB: far beyond any envelope.
const EMPTY = new Uint8Array(0);

export function chunkNonce(counter: number, last: boolean): Uint8Array {
  const nonce = new Uint8Array(12);
  // Counter in bytes 0..10, big-endian. JS numbers are exact far beyond MAX_COUNTER.
  let c = counter;
  for (let i = 10; i >= 0 && c > 0; i--) {
    nonce[i] = c % 256;
    c = Math.floor(c / 256);
  }
  nonce[11] = last ? 1 : 0;
  return nonce;
}

export function frameHeader(type: FrameType, length: number): Uint8Array {
  const h = new Uint8Array(FRAME_HEADER_LENGTH);
  h[0] = type;
  h.set(u32be(length), 1);
  return h;
}

/** Length of the ciphertext stream for a plaintext stream of `plaintextLength` (> 0) bytes. */
export function streamLength(plaintextLength: number): number {
  return plaintextLength + TAG_LENGTH * Math.ceil(plaintextLength / CHUNK_SIZE);
}

/** Seals a plaintext stream written in arbitrary pieces. */
export class ChunkWriter {
  // Grown on demand up to one chunk: most items are small, and a 64 KiB buffer per envelope
  // would be most of the garbage a small envelope makes.
  private buf = new Uint8Array(4096);
  private fill = 0;
  private counter = 0;
  private closed = false;
  /** Plaintext bytes written so far. */
  written = 0;

  constructor(private readonly key: Uint8Array) {}

  /** Adds plaintext; returns the chunks completed so far (a full chunk is sealed only once more bytes follow it). */
  write(data: Uint8Array): Uint8Array[] {
    if (this.closed) throw new ArgumentError('stream: write after finish');
    const out: Uint8Array[] = [];
    let o = 0;
    while (o < data.length) {
      if (this.fill === CHUNK_SIZE) {
        out.push(this.seal(this.buf, false));
        this.fill = 0;
      }
      const n = Math.min(CHUNK_SIZE - this.fill, data.length - o);
      if (this.fill + n > this.buf.length) {
        const grown = new Uint8Array(Math.min(CHUNK_SIZE, Math.max(2 * this.buf.length, this.fill + n)));
        grown.set(this.buf.subarray(0, this.fill));
        this.buf = grown;
      }
      this.buf.set(data.subarray(o, o + n), this.fill);
      this.fill += n;
      o += n;
    }
    this.written += data.length;
    return out;
  }

  /** Seals the final chunk. The plaintext stream must not be empty. */
  finish(): Uint8Array {
    if (this.closed) throw new ArgumentError('stream: finished twice');
    if (this.fill === 0) throw new ArgumentError('stream: empty plaintext');
    this.closed = true;
    return this.seal(this.buf.subarray(0, this.fill), true);
  }

  private seal(pt: Uint8Array, last: boolean): Uint8Array {
    if (this.counter >= MAX_COUNTER) throw new ArgumentError('stream: chunk counter exhausted');
    return getProvider().aeadSeal(AeadId.ChaCha20Poly1305, this.key, chunkNonce(this.counter++, last), pt, EMPTY);
  }
}

/**
 * Opens a ciphertext stream fed in arbitrary pieces; returns plaintext pieces in order, the
 * final chunk's only at {@link end}.
 */
export class ChunkReader {
  private pending: Uint8Array[] = [];
  private pendingLength = 0;
  private counter = 0;
  private ended = false;

  constructor(private readonly key: Uint8Array) {}

  push(bytes: Uint8Array): Uint8Array[] {
    if (this.ended) throw new OpenError('stream: bytes after the end');
    if (bytes.length > 0) {
      this.pending.push(bytes);
      this.pendingLength += bytes.length;
    }
    const out: Uint8Array[] = [];
    // A full chunk is known not to be the last once at least one more byte follows it.
    while (this.pendingLength > CHUNK_CIPHERTEXT_SIZE) out.push(this.open(this.take(CHUNK_CIPHERTEXT_SIZE), false));
    return out;
  }

  end(): Uint8Array {
    if (this.ended) throw new OpenError('stream: ended twice');
    this.ended = true;
    if (this.pendingLength <= TAG_LENGTH) throw new OpenError('stream: truncated (no final chunk)');
    return this.open(this.take(this.pendingLength), true);
  }

  private take(n: number): Uint8Array {
    const first = this.pending[0] as Uint8Array;
    let out: Uint8Array;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.pending.shift();
      else this.pending[0] = first.subarray(n);
    } else {
      out = new Uint8Array(n);
      let o = 0;
      while (o < n) {
        const p = this.pending[0] as Uint8Array;
        const k = Math.min(p.length, n - o);
        out.set(p.subarray(0, k), o);
        o += k;
        if (k === p.length) this.pending.shift();
        else this.pending[0] = p.subarray(k);
      }
    }
    this.pendingLength -= n;
    return out;
  }

  private open(ct: Uint8Array, last: boolean): Uint8Array {
    const pt = getProvider().aeadOpen(AeadId.ChaCha20Poly1305, this.key, chunkNonce(this.counter, last), ct, EMPTY);
    if (pt === null) throw new OpenError(`stream: chunk ${this.counter}${last ? ' (final)' : ''} does not authenticate`);
    this.counter++;
    return pt;
  }
}
