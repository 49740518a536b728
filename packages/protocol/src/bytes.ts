/** Byte helpers used everywhere. One validation helper, named after noble's `abytes`. */
import { ArgumentError } from './errors.js';

export function isBytes(a: unknown): a is Uint8Array {
  return a instanceof Uint8Array || (ArrayBuffer.isView(a) && a.constructor.name === 'Uint8Array');
}

/** Throws an {@link ArgumentError} naming the argument unless `value` is bytes of the given length(s). */
export function abytes(value: unknown, title: string, ...lengths: number[]): Uint8Array {
  if (!isBytes(value)) throw new ArgumentError(`${title}: expected Uint8Array, got ${typeof value}`);
  if (lengths.length > 0 && !lengths.includes(value.length)) {
    throw new ArgumentError(`${title}: expected ${lengths.join(' or ')} bytes, got ${value.length}`);
  }
  return value;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const te = new TextEncoder();
export function utf8(s: string): Uint8Array {
  return te.encode(s);
}

export function u16be(n: number): Uint8Array {
  return new Uint8Array([(n >>> 8) & 0xff, n & 0xff]);
}

export function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, false);
  return b;
}

export function u64be(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new ArgumentError(`u64be: not a safe non-negative integer: ${n}`);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), false);
  return b;
}

export function readU32be(b: Uint8Array, offset: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(offset, false);
}

/** Constant-time equality: the time depends only on the lengths, never on the contents. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/** Bytewise lexicographic order (shorter first on a common prefix). Not constant-time: public data only. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new ArgumentError('fromHex: not an even-length hex string');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Overwrites secret material that is no longer needed (best effort in a garbage-collected runtime). */
export function wipe(...arrays: Uint8Array[]): void {
  for (const a of arrays) a.fill(0);
}
