/**
 * The crypto provider: every primitive Valise needs, behind one small synchronous interface.
 *
 * Two implementations give the same bytes: {@link nobleProvider} (pure TypeScript on the
 * audited `@noble/*` libraries, runs everywhere) and `nodeProvider` from `@valise/protocol/node`
 * (native `node:crypto`, many times faster for public-key work and large bodies).
 * Everything is synchronous on purpose: an async hop per operation costs more than the
 * operation itself (see DESIGN.md, performance principles).
 *
 * Primitives without a native Node implementation (ML-KEM, SHA-3, XChaCha20) are not part of
 * the interface; they always come from `@noble/*`.
 */
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { CryptoError } from './errors.js';

/** AEAD algorithms by their HPKE code point (RFC 9180 §7.3). */
export const AeadId = {
  Aes128Gcm: 0x0001,
  ChaCha20Poly1305: 0x0003,
} as const;
export type AeadId = (typeof AeadId)[keyof typeof AeadId];

/** An incremental hash, for bodies that are hashed while they stream. */
export interface IncrementalHash {
  update(data: Uint8Array): IncrementalHash;
  digest(): Uint8Array;
}

export interface CryptoProvider {
  readonly name: string;
  sha256(data: Uint8Array): Uint8Array;
  createSha256(): IncrementalHash;
  sha512(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** X25519 public key of a 32-byte secret (RFC 7748, clamping included). */
  x25519PublicKey(secretKey: Uint8Array): Uint8Array;
  /** X25519(secretKey, publicKey). Throws {@link CryptoError} if the result is all zeros. */
  x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  ed25519PublicKey(secretKey: Uint8Array): Uint8Array;
  ed25519Sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array;
  /** Strict RFC 8032 verification (no ZIP-215 leniency), so both providers accept the same set. */
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  /** AEAD encryption; the result is ciphertext followed by the 16-byte tag. */
  aeadSeal(alg: AeadId, key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** AEAD decryption; returns `null` (never throws) when the tag does not verify. */
  aeadOpen(alg: AeadId, key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array | null;
}

function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}

/** Key and nonce sizes are checked here for both providers, so that both refuse the same inputs. */
export function checkAeadSizes(alg: AeadId, key: Uint8Array, nonce: Uint8Array): void {
  const keyLength = alg === AeadId.Aes128Gcm ? 16 : alg === AeadId.ChaCha20Poly1305 ? 32 : -1;
  if (keyLength < 0) throw new CryptoError(`unsupported AEAD ${alg as number}`);
  if (key.length !== keyLength) throw new CryptoError(`AEAD key: expected ${keyLength} bytes, got ${key.length}`);
  if (nonce.length !== 12) throw new CryptoError(`AEAD nonce: expected 12 bytes, got ${nonce.length}`);
}

/**
 * Encodings of the eight Ed25519 points of small order (RFC 8032 §5.1.3 encodings, sign bit
 * clear and set where x = 0 allows both). OpenSSL accepts a signature under such a public key
 * (with R = identity and S = 0, for any message) and noble does not; both providers refuse
 * these keys up front so that they accept the same signatures.
 */
const SMALL_ORDER_ED25519 = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '0000000000000000000000000000000000000000000000000000000000000000',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  '0100000000000000000000000000000000000000000000000000000000000080',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
];
const smallOrder = new Set(SMALL_ORDER_ED25519);

/**
 * True for a public key that no strict verifier should accept: a small-order point, or a
 * non-canonical encoding (y >= p = 2^255 - 19, which OpenSSL reduces and noble refuses; y = p
 * and y = p + 1 are small-order points in disguise).
 */
export function isSmallOrderEd25519(publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return false;
  let hex = '';
  for (const b of publicKey) hex += b.toString(16).padStart(2, '0');
  return smallOrder.has(hex) || isNonCanonicalY(publicKey);
}

function isNonCanonicalY(b: Uint8Array): boolean {
  if (((b[31] as number) & 0x7f) !== 0x7f) return false;
  for (let i = 1; i < 31; i++) if (b[i] !== 0xff) return false;
  return (b[0] as number) >= 0xed;
}

function nobleAead(alg: AeadId, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array) {
  checkAeadSizes(alg, key, nonce);
  switch (alg) {
    case AeadId.ChaCha20Poly1305:
      return chacha20poly1305(key, nonce, aad);
    case AeadId.Aes128Gcm:
      return gcm(key, nonce, aad);
    default:
      throw new CryptoError(`unsupported AEAD ${alg as number}`);
  }
}

export const nobleProvider: CryptoProvider = {
  name: 'noble',
  sha256: (data) => sha256(data),
  createSha256() {
    const h = sha256.create();
    const wrapper: IncrementalHash = {
      update(data) {
        h.update(data);
        return wrapper;
      },
      digest: () => h.digest(),
    };
    return wrapper;
  },
  sha512: (data) => sha512(data),
  hmacSha256: (key, data) => hmac(sha256, key, data),
  x25519PublicKey: (sk) => x25519.getPublicKey(sk),
  x25519(sk, pk) {
    let out: Uint8Array;
    try {
      out = x25519.getSharedSecret(sk, pk);
    } catch (cause) {
      throw new CryptoError('X25519 failed: low-order or invalid public key', { cause });
    }
    if (isAllZero(out)) throw new CryptoError('X25519 failed: low-order or invalid public key');
    return out;
  },
  ed25519PublicKey: (sk) => ed25519.getPublicKey(sk),
  ed25519Sign: (msg, sk) => ed25519.sign(msg, sk),
  ed25519Verify(sig, msg, pk) {
    if (isSmallOrderEd25519(pk)) return false;
    try {
      return ed25519.verify(sig, msg, pk, { zip215: false });
    } catch {
      return false;
    }
  },
  aeadSeal: (alg, key, nonce, pt, aad) => nobleAead(alg, key, nonce, aad).encrypt(pt),
  aeadOpen(alg, key, nonce, ct, aad) {
    try {
      return nobleAead(alg, key, nonce, aad).decrypt(ct);
    } catch {
      return null;
    }
  },
};

/**
 * XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha), for keys that encrypt many messages under
 * random 24-byte nonces (files at rest). Not part of the provider interface: Node has no native
 * XChaCha20, so both providers use @noble/ciphers. Opening returns `null` on failure.
 */
export function xchacha20poly1305Seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  if (key.length !== 32 || nonce.length !== 24) throw new CryptoError('XChaCha20-Poly1305: expected a 32-byte key and a 24-byte nonce');
  return xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
}

export function xchacha20poly1305Open(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array | null {
  if (key.length !== 32 || nonce.length !== 24) throw new CryptoError('XChaCha20-Poly1305: expected a 32-byte key and a 24-byte nonce');
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(ciphertext);
  } catch {
    return null;
  }
}

let current: CryptoProvider = nobleProvider;

/** The provider every operation uses unless it is given one. */
export function getProvider(): CryptoProvider {
  return current;
}

/**
 * Selects the provider for the whole process (for example `useProvider(nodeProvider)` once at
 * start-up on Node). Providers give identical bytes, so switching never changes what is produced.
 */
export function useProvider(provider: CryptoProvider): void {
  current = provider;
}
