/**
 * X-Wing, the hybrid post-quantum KEM of draft-connolly-cfrg-xwing-kem (revision -05 and later:
 * SHAKE256 seed expansion, combiner label last). https://datatracker.ietf.org/doc/draft-connolly-cfrg-xwing-kem/
 *
 * This file only composes audited primitives, it implements none: ML-KEM-768 (FIPS 203) and
 * SHA3-256/SHAKE256 (FIPS 202) come from `@noble/*`, X25519 from the crypto provider (native on
 * Node). The result is secure if either X25519 or ML-KEM-768 holds (draft §6). See spec/hpke.md.
 *
 *   sk        = 32-byte seed (the only secret that is ever stored or transmitted)
 *   expanded  = SHAKE256(sk, 96 bytes)
 *   pk_M,sk_M = ML-KEM-768.KeyGen_internal(d = expanded[0:32], z = expanded[32:64])
 *   sk_X      = expanded[64:96],  pk_X = X25519(sk_X, 9)
 *   pk        = pk_M || pk_X                                       (1184 + 32 = 1216 bytes)
 *   ct        = ct_M || ct_X                                       (1088 + 32 = 1120 bytes)
 *   ss        = SHA3-256(ss_M || ss_X || ct_X || pk_X || "\.//^\")  (label 5c2e2f2f5e5c)
 *
 * Valise is stricter than the draft in one place: an all-zero X25519 output (a low-order pk_X or
 * ct_X) is refused with a CryptoError, as RFC 9180 §7.1.4 requires for DHKEM. Honest keys and
 * ciphertexts never produce one, so this changes no honest result.
 */
import { sha3_256, shake256 } from '@noble/hashes/sha3.js';
import { type KEMPrepared, ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { abytes, equalBytes, wipe } from './bytes.js';
import { CryptoError } from './errors.js';
import { getProvider } from './provider.js';
import type { RandomSource } from './random.js';

export const XWING_PUBLIC_KEY_LENGTH = 1216;
export const XWING_SECRET_KEY_LENGTH = 32;
export const XWING_ENC_LENGTH = 1120;
export const XWING_SHARED_SECRET_LENGTH = 32;
/** Length of the derandomised encapsulation seed: 32 bytes of ML-KEM coins, then the X25519 ephemeral secret. */
export const XWING_ESEED_LENGTH = 64;

const ML_KEM_PK = 1184;
const ML_KEM_CT = 1088;
const X_LEN = 32;

/** XWingLabel, draft §5.3: the six ASCII bytes `\./` `/^\`. Belongs to the draft, hence kept here, not in labels.ts. */
const XWING_LABEL = Uint8Array.of(0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c);

/** The expanded decapsulation key (draft §5.5.1): everything `expandDecapsulationKey(sk)` computes. */
interface Expanded {
  /** Private copy of the seed this entry was computed from; checked before every use. */
  readonly seed: Uint8Array;
  readonly skM: Uint8Array;
  readonly skX: Uint8Array;
  /** pk_M || pk_X, never handed out (callers get copies). */
  readonly pk: Uint8Array;
  readonly pkX: Uint8Array;
  /** ML-KEM with the public matrix expanded once: decapsulation re-encrypts with it. */
  readonly prepared: KEMPrepared;
  /** The array last returned by {@link xwingX25519SecretKey}, reused while the caller leaves it intact. */
  skXOut?: Uint8Array;
}

/**
 * Expanding a seed costs an ML-KEM key generation (matrix sampling) plus an X25519 base-point
 * multiplication; decapsulation would otherwise pay it every time. Entries are keyed by the
 * identity of the caller's array (so they die with it) and hold a copy of the seed that is
 * compared in constant time before use, so a wiped or overwritten array is never served a stale key.
 */
const expandedCache = new WeakMap<Uint8Array, Expanded>();

function expand(secretKey: Uint8Array): Expanded {
  abytes(secretKey, 'X-Wing secret key', XWING_SECRET_KEY_LENGTH);
  const hit = expandedCache.get(secretKey);
  if (hit !== undefined && equalBytes(hit.seed, secretKey)) return hit;
  const entry = expandUncached(secretKey);
  expandedCache.set(secretKey, entry);
  return entry;
}

function expandUncached(seed: Uint8Array): Expanded {
  const expanded = shake256(seed, { dkLen: 96 });
  try {
    // ml_kem768.keygen takes d || z as one 64-byte seed and copies what it keeps.
    const { publicKey: pkM, secretKey: skM } = ml_kem768.keygen(expanded.subarray(0, 64));
    const skX = expanded.slice(64, 96);
    const pkX = getProvider().x25519PublicKey(skX);
    const pk = new Uint8Array(XWING_PUBLIC_KEY_LENGTH);
    pk.set(pkM, 0);
    pk.set(pkX, ML_KEM_PK);
    return { seed: Uint8Array.from(seed), skM, skX, pk, pkX: pk.subarray(ML_KEM_PK), prepared: ml_kem768.prepare(pkM) };
  } finally {
    wipe(expanded);
  }
}

/**
 * Encapsulating to an ML-KEM key first expands its public matrix (about a fifth of the work);
 * a sender writes to the same recipients again and again, so prepared keys are kept, bounded,
 * oldest out. Only public data is cached; a hit is confirmed against the whole key.
 */
const PREPARED_CACHE_SIZE = 1024;
const preparedCache = new Map<string, KEMPrepared>();

function preparedFor(pkM: Uint8Array): KEMPrepared {
  const id = String.fromCharCode(...pkM.subarray(0, 48));
  const hit = preparedCache.get(id);
  if (hit !== undefined && equalBytes(hit.publicKey, pkM)) return hit;
  const prepared = ml_kem768.prepare(pkM);
  if (preparedCache.size >= PREPARED_CACHE_SIZE) preparedCache.delete(preparedCache.keys().next().value as string);
  preparedCache.set(id, prepared);
  return prepared;
}

/** SHA3-256(ss_M || ss_X || ct_X || pk_X || XWingLabel), draft §5.3. */
function combiner(ssM: Uint8Array, ssX: Uint8Array, ctX: Uint8Array, pkX: Uint8Array): Uint8Array {
  const input = new Uint8Array(4 * X_LEN + XWING_LABEL.length);
  input.set(ssM, 0);
  input.set(ssX, X_LEN);
  input.set(ctX, 2 * X_LEN);
  input.set(pkX, 3 * X_LEN);
  input.set(XWING_LABEL, 4 * X_LEN);
  const ss = sha3_256(input);
  wipe(input);
  return ss;
}

/**
 * GenerateKeyPairDerand(seed), draft §5.2.1. `secretKey` is a copy of the 32-byte seed, already
 * expanded and cached, so that decapsulating with it right away costs no second key generation.
 */
export function xwingKeyPairFromSeed(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const entry = expand(seed);
  const secretKey = Uint8Array.from(seed);
  expandedCache.set(secretKey, entry);
  return { publicKey: entry.pk.slice(), secretKey };
}

/** GenerateKeyPair(), draft §5.2: a fresh 32-byte seed from `random`. */
export function xwingGenerateKeyPair(random: RandomSource): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const seed = abytes(random(XWING_SECRET_KEY_LENGTH), 'random seed', XWING_SECRET_KEY_LENGTH);
  const pair = xwingKeyPairFromSeed(seed);
  wipe(seed);
  return pair;
}

/** The 1216-byte public key of a 32-byte secret key (cached like decapsulation). */
export function xwingPublicKey(secretKey: Uint8Array): Uint8Array {
  return expand(secretKey).pk.slice();
}

/**
 * EncapsulateDerand(pk, eseed), draft §5.4.1: eseed[0:32] is ML-KEM's message randomness m,
 * eseed[32:64] the X25519 ephemeral secret. Throws CryptoError if pk_M fails the FIPS 203 §7.2
 * modulus check or pk_X is a low-order point.
 */
export function xwingEncapsulateDerand(publicKey: Uint8Array, eseed: Uint8Array): { sharedSecret: Uint8Array; enc: Uint8Array } {
  abytes(publicKey, 'X-Wing public key', XWING_PUBLIC_KEY_LENGTH);
  abytes(eseed, 'X-Wing eseed', XWING_ESEED_LENGTH);
  const pkM = publicKey.subarray(0, ML_KEM_PK);
  const pkX = publicKey.subarray(ML_KEM_PK);
  const ekX = eseed.subarray(32, 64);
  const p = getProvider();
  const ctX = p.x25519PublicKey(ekX);
  const ssX = p.x25519(ekX, pkX);
  let ml: { cipherText: Uint8Array; sharedSecret: Uint8Array };
  try {
    ml = preparedFor(pkM).encapsulate(eseed.subarray(0, 32));
  } catch (cause) {
    wipe(ssX);
    throw new CryptoError('X-Wing: ML-KEM-768 encapsulation key check failed', { cause });
  }
  const sharedSecret = combiner(ml.sharedSecret, ssX, ctX, pkX);
  wipe(ml.sharedSecret, ssX);
  const enc = new Uint8Array(XWING_ENC_LENGTH);
  enc.set(ml.cipherText, 0);
  enc.set(ctX, ML_KEM_CT);
  return { sharedSecret, enc };
}

/** Encapsulate(pk), draft §5.4: EncapsulateDerand with 64 fresh random bytes. */
export function xwingEncapsulate(publicKey: Uint8Array, random: RandomSource): { sharedSecret: Uint8Array; enc: Uint8Array } {
  const eseed = abytes(random(XWING_ESEED_LENGTH), 'random eseed', XWING_ESEED_LENGTH);
  try {
    return xwingEncapsulateDerand(publicKey, eseed);
  } finally {
    wipe(eseed);
  }
}

/**
 * Decapsulate(ct, sk), draft §5.5. ML-KEM rejects implicitly (a forged ct_M gives an unrelated
 * secret, not an error); the only failure is a low-order ct_X, which throws CryptoError.
 */
export function xwingDecapsulate(enc: Uint8Array, secretKey: Uint8Array): Uint8Array {
  abytes(enc, 'X-Wing ciphertext', XWING_ENC_LENGTH);
  const k = expand(secretKey);
  const ctX = enc.subarray(ML_KEM_CT);
  const ssX = getProvider().x25519(k.skX, ctX);
  const ssM = k.prepared.decapsulate(enc.subarray(0, ML_KEM_CT), k.skM);
  const ss = combiner(ssM, ssX, ctX, k.pkX);
  wipe(ssM, ssX);
  return ss;
}

/** pk_X, the X25519 half of a public key (its last 32 bytes). A copy. */
export function xwingX25519PublicKey(publicKey: Uint8Array): Uint8Array {
  abytes(publicKey, 'X-Wing public key', XWING_PUBLIC_KEY_LENGTH);
  return publicKey.slice(ML_KEM_PK);
}

/**
 * sk_X = SHAKE256(sk, 96)[64:96], the X25519 half of a secret key. The same array is returned
 * on every call while it is left intact, so that a provider's per-array key cache keeps hitting;
 * if the caller wipes or changes it, the next call hands out a fresh copy.
 */
export function xwingX25519SecretKey(secretKey: Uint8Array): Uint8Array {
  const k = expand(secretKey);
  if (k.skXOut === undefined || !equalBytes(k.skXOut, k.skX)) k.skXOut = k.skX.slice();
  return k.skXOut;
}
