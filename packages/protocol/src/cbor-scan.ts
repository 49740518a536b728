/**
 * A forward-only reader of deterministic CBOR for the hot fast paths (the relay's Send and Ack
 * frames, the envelope prelude), which parse one known structure straight from its bytes instead
 * of building the generic Map tree of cbor.ts and walking it with MapReader.
 *
 * The reader only ever answers "this is exactly the item I expected" or "no". Each method checks
 * one expected item in its only deterministic encoding (RFC 8949 §4.2.1: shortest-form head,
 * definite length) with the caller's range, and reports anything else (another major type, a
 * long or 8-byte argument, a value or length out of range, the end of the input) by returning
 * false or -1, after which the caller gives up. Callers then run the generic strict decoder,
 * which accepts or rejects the input with its own error message: so a fast path can only ever
 * accept a subset of what the generic path accepts, and never has errors of its own.
 *
 * Not exported from the package: internal to the fast paths.
 */

export class CborScanner {
  /** Offset of the next unread byte. Meaningless once a method has failed. */
  pos: number;

  constructor(
    readonly b: Uint8Array,
    pos: number,
    readonly end: number,
  ) {
    this.pos = pos;
  }

  /** The next bytes are exactly `expected` (fixed heads, keys and small values). */
  literal(expected: readonly number[]): boolean {
    const n = expected.length;
    if (n > this.end - this.pos) return false;
    const b = this.b;
    const p = this.pos;
    for (let i = 0; i < n; i++) if (b[p + i] !== expected[i]) return false;
    this.pos = p + n;
    return true;
  }

  /** The next byte is `v` (a map key 0..23, or a head with a fixed small argument). */
  byte(v: number): boolean {
    if (this.pos >= this.end || this.b[this.pos] !== v) return false;
    this.pos++;
    return true;
  }

  /**
   * A head of major type `major` in its shortest form with an argument below 2^32; returns the
   * argument, or -1. (An 8-byte argument is never needed by the fast paths: the generic path
   * handles it.)
   */
  head(major: number): number {
    const b = this.b;
    const p = this.pos;
    if (p >= this.end) return -1;
    const ib = b[p] as number;
    if (ib >>> 5 !== major) return -1;
    const ai = ib & 0x1f;
    if (ai < 24) {
      this.pos = p + 1;
      return ai;
    }
    let v: number;
    switch (ai) {
      case 24:
        if (p + 2 > this.end) return -1;
        v = b[p + 1] as number;
        if (v < 24) return -1;
        this.pos = p + 2;
        return v;
      case 25:
        if (p + 3 > this.end) return -1;
        v = ((b[p + 1] as number) << 8) | (b[p + 2] as number);
        if (v < 0x100) return -1;
        this.pos = p + 3;
        return v;
      case 26:
        if (p + 5 > this.end) return -1;
        v = (b[p + 1] as number) * 0x1000000 + (((b[p + 2] as number) << 16) | ((b[p + 3] as number) << 8) | (b[p + 4] as number));
        if (v < 0x10000) return -1;
        this.pos = p + 5;
        return v;
      default:
        return -1;
    }
  }

  /** An unsigned integer at most `max` (below 2^32); returns it, or -1. */
  uint(max: number): number {
    const v = this.head(0);
    return v > max ? -1 : v;
  }

  /**
   * A byte string of `min` to `max` bytes that lies wholly inside the input; returns the offset
   * of its content (its length is then `pos` minus that offset), or -1.
   */
  bytes(min: number, max: number): number {
    const n = this.head(2);
    if (n < min || n > max || n > this.end - this.pos) return -1;
    const at = this.pos;
    this.pos = at + n;
    return at;
  }
}

/** Length of the shortest-form CBOR head (RFC 8949 §3) whose argument is `n`. */
export function headLength(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n <= 0xffffffff ? 5 : 9;
}

/**
 * A plain Uint8Array view of `bytes` (a Buffer's `slice` aliases and returns a Buffer): values
 * are copied out of it with `slice`, as the generic decoder does, so that decoded byte strings
 * are plain arrays that never alias the caller's buffer.
 */
export function plainView(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
