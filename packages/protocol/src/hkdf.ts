/**
 * HKDF-SHA-256 (RFC 5869), written once over the provider's HMAC so that it runs natively on
 * Node and on @noble/hashes elsewhere. Checked against RFC 5869's test cases and @noble/hashes.
 */
import { ArgumentError } from './errors.js';
import { getProvider } from './provider.js';

export const HASH_LEN = 32;

export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  // RFC 5869 §2.2: an absent salt is HashLen zero bytes.
  return getProvider().hmacSha256(salt.length === 0 ? new Uint8Array(HASH_LEN) : salt, ikm);
}

export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_LEN) {
    throw new ArgumentError(`hkdfExpand: length must be 0..${255 * HASH_LEN}, got ${length}`);
  }
  const p = getProvider();
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  for (let i = 1, o = 0; o < length; i++) {
    const input = new Uint8Array(t.length + info.length + 1);
    input.set(t, 0);
    input.set(info, t.length);
    input[input.length - 1] = i;
    t = p.hmacSha256(prk, input);
    out.set(t.subarray(0, Math.min(HASH_LEN, length - o)), o);
    o += HASH_LEN;
  }
  return out;
}

export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return hkdfExpand(hkdfExtract(salt, ikm), info, length);
}
