/**
 * `@valise/protocol/node`: the native provider on `node:crypto`. Browsers never load this file.
 *
 * Importing a raw key into OpenSSL costs about as much as the operation itself, so imported
 * keys are cached: secret keys by the identity of the caller's array (checked against a copy,
 * so a wiped or reused array is never served a stale key), public keys by value in a bounded map.
 */

import * as nodeCrypto from 'node:crypto';
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { equalBytes } from './bytes.js';
import { CryptoError } from './errors.js';
import { AeadId, type CryptoProvider, checkAeadSizes, type IncrementalHash, isSmallOrderEd25519, useProvider } from './provider.js';

const JWK_CURVE = { x25519: 'X25519', ed25519: 'Ed25519' } as const;
const b64url = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
/** A syntactically required JWK `x` that OpenSSL does not read for a private key (see importSecret). */
const PLACEHOLDER_X = b64url(new Uint8Array(32));
let jwkSecretImport = true;

const PKCS8_PREFIX = {
  x25519: Buffer.from('302e020100300506032b656e04220420', 'hex'),
  ed25519: Buffer.from('302e020100300506032b657004220420', 'hex'),
};
type Curve = keyof typeof PKCS8_PREFIX;

const secretCache = { x25519: new WeakMap(), ed25519: new WeakMap() } as Record<
  Curve,
  WeakMap<Uint8Array, { copy: Uint8Array; key: KeyObject }>
>;

function secretKeyObject(curve: Curve, sk: Uint8Array): KeyObject {
  if (sk.length !== 32) throw new CryptoError(`${curve} secret key: expected 32 bytes, got ${sk.length}`);
  const hit = secretCache[curve].get(sk);
  if (hit && equalBytes(hit.copy, sk)) return hit.key;
  const key = importSecret(curve, sk);
  secretCache[curve].set(sk, { copy: Uint8Array.from(sk), key });
  return key;
}

/**
 * OpenSSL 3 imports a PKCS#8 DER key ~10x slower than a JWK (about 500 µs against 50 µs here),
 * which would dominate every fresh ephemeral key. Node requires `x` in an OKP JWK but builds the
 * key from `d` alone, so a placeholder is passed; the first import is checked against the DER
 * path, and any disagreement or error switches to DER for good (test: node-provider.test.ts).
 */
function importSecret(curve: Curve, sk: Uint8Array): KeyObject {
  const der = () => createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX[curve], sk]), format: 'der', type: 'pkcs8' });
  if (!jwkSecretImport) return der();
  try {
    const key = createPrivateKey({ key: { kty: 'OKP', crv: JWK_CURVE[curve], d: b64url(sk), x: PLACEHOLDER_X }, format: 'jwk' });
    if (!jwkChecked) {
      jwkChecked = true;
      const a = createPublicKey(key).export({ format: 'jwk' }).x;
      const b = createPublicKey(der()).export({ format: 'jwk' }).x;
      if (a !== b) throw new Error('JWK import ignored d');
    }
    return key;
  } catch {
    jwkSecretImport = false;
    return der();
  }
}
let jwkChecked = false;

/** Whether secret keys are imported through JWK (the fast path); exported for the provider test. */
export function nodeProviderUsesJwkImportForTesting(): boolean {
  return jwkSecretImport;
}

const PUBLIC_CACHE_SIZE = 4096;
const publicCache = { x25519: new Map<string, KeyObject>(), ed25519: new Map<string, KeyObject>() };

function publicKeyObject(curve: Curve, pk: Uint8Array): KeyObject {
  if (pk.length !== 32) throw new CryptoError(`${curve} public key: expected 32 bytes, got ${pk.length}`);
  const cache = publicCache[curve];
  const id = Buffer.from(pk.buffer, pk.byteOffset, pk.byteLength).toString('latin1');
  let key = cache.get(id);
  if (key === undefined) {
    key = createPublicKey({ key: { kty: 'OKP', crv: JWK_CURVE[curve], x: b64url(pk) }, format: 'jwk' });
    if (cache.size >= PUBLIC_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    cache.set(id, key);
  }
  return key;
}

function rawPublic(curve: Curve, sk: Uint8Array): Uint8Array {
  const x = createPublicKey(secretKeyObject(curve, sk)).export({ format: 'jwk' }).x as string;
  return new Uint8Array(Buffer.from(x, 'base64url'));
}

/** A plain Uint8Array copy of a Buffer, so results compare equal to the noble provider's. */
const plain = (b: Buffer): Uint8Array => new Uint8Array(b);

function cipherName(alg: AeadId): 'chacha20-poly1305' | 'aes-128-gcm' {
  if (alg === AeadId.ChaCha20Poly1305) return 'chacha20-poly1305';
  if (alg === AeadId.Aes128Gcm) return 'aes-128-gcm';
  throw new CryptoError(`unsupported AEAD ${alg as number}`);
}

/**
 * `crypto.hash` (Node 20.12+), the one-shot digest, when this Node has it (read off the namespace:
 * a named import of a missing export would fail to load). Older runtimes use createHash.
 */
const oneShotHash: typeof nodeCrypto.hash | undefined = typeof nodeCrypto.hash === 'function' ? nodeCrypto.hash : undefined;

/**
 * The digest of data that is all at hand. Most hashes Valise computes are small (a relay message
 * id hashes 60 bytes per message; certificate ids, labels, transcripts), where the fixed cost of
 * the call is all there is: createHash builds a Hash object, and a Buffer result costs an
 * allocation in the binding and a copy into a plain array. `crypto.hash` skips the object, and
 * asking it for a latin1 ("binary") string, one char code per byte, skips the Buffer: about
 * 0.6 µs against 1.7 µs here for 60 bytes (for large inputs both are the same hashing).
 */
function digest(algorithm: 'sha256' | 'sha512', size: number, data: Uint8Array): Uint8Array {
  if (oneShotHash === undefined) return plain(createHash(algorithm).update(data).digest());
  const s = oneShotHash(algorithm, data, 'binary');
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Whether digests go through the one-shot `crypto.hash`; exported for the provider test. */
export function nodeProviderUsesOneShotHashForTesting(): boolean {
  return oneShotHash !== undefined;
}

export const nodeProvider: CryptoProvider = {
  name: 'node',
  sha256: (data) => digest('sha256', 32, data),
  createSha256() {
    const h = createHash('sha256');
    const wrapper: IncrementalHash = {
      update(data) {
        h.update(data);
        return wrapper;
      },
      digest: () => plain(h.digest()),
    };
    return wrapper;
  },
  sha512: (data) => digest('sha512', 64, data),
  hmacSha256: (key, data) => plain(createHmac('sha256', key).update(data).digest()),
  x25519PublicKey: (sk) => rawPublic('x25519', sk),
  x25519(sk, pk) {
    try {
      return plain(diffieHellman({ privateKey: secretKeyObject('x25519', sk), publicKey: publicKeyObject('x25519', pk) }));
    } catch (cause) {
      // OpenSSL refuses an all-zero result (a low-order public key), as RFC 9180 §7.1.4 requires.
      throw new CryptoError('X25519 failed: low-order or invalid public key', { cause });
    }
  },
  ed25519PublicKey: (sk) => rawPublic('ed25519', sk),
  ed25519Sign: (msg, sk) => plain(sign(null, msg, secretKeyObject('ed25519', sk))),
  ed25519Verify(sig, msg, pk) {
    if (sig.length !== 64 || isSmallOrderEd25519(pk)) return false;
    try {
      return verify(null, msg, publicKeyObject('ed25519', pk), sig);
    } catch {
      return false;
    }
  },
  aeadSeal(alg, key, nonce, pt, aad) {
    checkAeadSizes(alg, key, nonce);
    const c = createCipheriv(cipherName(alg) as 'chacha20-poly1305', key, nonce, { authTagLength: 16 });
    c.setAAD(aad, { plaintextLength: pt.length });
    const head = c.update(pt);
    const tail = c.final();
    const out = new Uint8Array(head.length + tail.length + 16);
    out.set(head, 0);
    out.set(tail, head.length);
    out.set(c.getAuthTag(), head.length + tail.length);
    return out;
  },
  aeadOpen(alg, key, nonce, ct, aad) {
    checkAeadSizes(alg, key, nonce);
    if (ct.length < 16) return null;
    const body = ct.subarray(0, ct.length - 16);
    try {
      const d = createDecipheriv(cipherName(alg) as 'chacha20-poly1305', key, nonce, { authTagLength: 16 });
      d.setAuthTag(ct.subarray(ct.length - 16));
      d.setAAD(aad, { plaintextLength: body.length });
      const head = d.update(body);
      const tail = d.final();
      const out = new Uint8Array(head.length + tail.length);
      out.set(head, 0);
      out.set(tail, head.length);
      return out;
    } catch {
      return null;
    }
  },
};

/** Makes every Valise operation in this process use native `node:crypto`. */
export function useNodeCrypto(): void {
  useProvider(nodeProvider);
}

export { nodeProvider as provider };
