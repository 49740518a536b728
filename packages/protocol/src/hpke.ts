/**
 * Hybrid Public Key Encryption, RFC 9180 (https://www.rfc-editor.org/rfc/rfc9180), written from
 * the RFC text over the provider's primitives. Valise uses it for the per-recipient key wrap of
 * sealed envelopes, so setup is on the hot path (one per recipient) and kept lean: every labelled
 * prefix (`"HPKE-v1" || suite_id || label`, with `I2OSP(L, 2)` in front where L is fixed) is built
 * once per suite, and the default `psk_id_hash` is computed once per suite.
 *
 * What is here (spec/hpke.md says the same for reviewers):
 * - modes base, psk, auth, auth_psk (§5.1.1-§5.1.4), single-shot base seal/open (§6.1);
 * - KEMs DHKEM(X25519, HKDF-SHA256) 0x0020 (§4.1, §7.1) and X-Wing 0x647a
 *   (draft-connolly-cfrg-xwing-kem §5.6; no Auth modes, its shared secret used directly);
 * - KDF HKDF-SHA256 0x0001 (§7.2); AEADs AES-128-GCM 0x0001, ChaCha20-Poly1305 0x0003 and
 *   export-only 0xFFFF (§7.3); the secret export interface (§5.3).
 *
 * Errors: wrong argument types/lengths are ArgumentError; on the sender side a primitive failure
 * (low-order X25519 key, ML-KEM key check) is CryptoError; on the recipient side every failure of
 * `setup*R`/`open` that depends on received bytes is an OpenError, the same for every cause
 * (no oracle; errors.ts).
 */
import { shake256 } from '@noble/hashes/sha3.js';
import { abytes, concat, equalBytes, u16be, utf8, wipe } from './bytes.js';
import { ArgumentError, OpenError, SealError } from './errors.js';
import { HASH_LEN, hkdfExpand, hkdfExtract } from './hkdf.js';
import { AeadId, getProvider } from './provider.js';
import { type RandomSource, randomFrom } from './random.js';
import {
  XWING_ENC_LENGTH,
  XWING_ESEED_LENGTH,
  XWING_PUBLIC_KEY_LENGTH,
  XWING_SECRET_KEY_LENGTH,
  XWING_SHARED_SECRET_LENGTH,
  xwingDecapsulate,
  xwingEncapsulate,
  xwingGenerateKeyPair,
  xwingKeyPairFromSeed,
  xwingPublicKey,
} from './xwing.js';

// ---------------------------------------------------------------------------------------------
// Code points (RFC 9180 §7, Tables 2, 3 and 5; X-Wing from its draft's IANA section).

export const KemId = {
  /** DHKEM(X25519, HKDF-SHA256), RFC 9180 §7.1. */
  DhkemX25519HkdfSha256: 0x0020,
  /** X-Wing (ML-KEM-768 + X25519), draft-connolly-cfrg-xwing-kem §7. */
  XWing: 0x647a,
} as const;
export type KemId = (typeof KemId)[keyof typeof KemId];

export const KdfId = {
  HkdfSha256: 0x0001,
} as const;
export type KdfId = (typeof KdfId)[keyof typeof KdfId];

export const HpkeAeadId = {
  Aes128Gcm: AeadId.Aes128Gcm,
  ChaCha20Poly1305: AeadId.ChaCha20Poly1305,
  /** No AEAD: the context only exports secrets (§5.3). */
  ExportOnly: 0xffff,
} as const;
export type HpkeAeadId = (typeof HpkeAeadId)[keyof typeof HpkeAeadId];

/** HPKE modes, RFC 9180 §5, Table 1. */
export const Mode = {
  Base: 0x00,
  Psk: 0x01,
  Auth: 0x02,
  AuthPsk: 0x03,
} as const;
export type Mode = (typeof Mode)[keyof typeof Mode];

export interface HpkeSuite {
  readonly kem: KemId;
  readonly kdf: KdfId;
  readonly aead: HpkeAeadId;
}

/**
 * Sequence numbers are JS numbers, so the limit is 2^53 - 1 messages per context rather than
 * the RFC's 2^96 - 1; §5.2 allows a shorter counter as long as overflow is an error.
 */
export const MAX_SEQUENCE = Number.MAX_SAFE_INTEGER;

/** Sender randomness. Only tests and vectors set any of these; production draws from the system CSPRNG. */
export interface HpkeSenderOptions {
  /** Must return a fresh array on every call: the KEM overwrites what it draws once it is used. */
  randomForTesting?: RandomSource;
  /** DHKEM only: the RFC 9180 Appendix A `ikmE`; the ephemeral key is DeriveKeyPair(ikmE). 32 bytes. */
  ikmEForTesting?: Uint8Array;
  /** X-Wing only: the 64-byte `eseed` of EncapsulateDerand. */
  eseedForTesting?: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Labelled KDF (§4): LabeledExtract / LabeledExpand over HKDF-SHA256 (hkdf.ts, provider HMAC).

const EMPTY = new Uint8Array(0);
const VERSION_LABEL = utf8('HPKE-v1');

/** `"HPKE-v1" || suite_id || label`: the part of `labeled_ikm` that precedes `ikm`. */
function extractPrefix(suiteId: Uint8Array, label: string): Uint8Array {
  return concat(VERSION_LABEL, suiteId, utf8(label));
}

/** `I2OSP(L, 2) || "HPKE-v1" || suite_id || label`: the part of `labeled_info` that precedes `info`. */
function expandPrefix(suiteId: Uint8Array, label: string, length: number): Uint8Array {
  return concat(u16be(length), VERSION_LABEL, suiteId, utf8(label));
}

function labeledExtract(salt: Uint8Array, prefix: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hkdfExtract(salt, ikm.length === 0 ? prefix : concat(prefix, ikm));
}

function labeledExpand(prk: Uint8Array, prefix: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return hkdfExpand(prk, info.length === 0 ? prefix : concat(prefix, info), length);
}

// ---------------------------------------------------------------------------------------------
// KEMs (§4.1 interface).

export interface KemKeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

export interface KemEncapsulation {
  readonly sharedSecret: Uint8Array;
  readonly enc: Uint8Array;
}

/**
 * The KEM interface of RFC 9180 §4. Keys and `enc` are always their serialised byte strings
 * (SerializePublicKey etc. are the identity for both KEMs here). `authEncap`/`authDecap` exist
 * only for KEMs with an Auth mode.
 */
export interface Kem {
  readonly id: KemId;
  readonly name: string;
  readonly nSecret: number;
  readonly nEnc: number;
  readonly nPk: number;
  readonly nSk: number;
  deriveKeyPair(ikm: Uint8Array): KemKeyPair;
  generateKeyPair(random: RandomSource): KemKeyPair;
  publicKeyOf(secretKey: Uint8Array): Uint8Array;
  encap(pkR: Uint8Array, random: RandomSource): KemEncapsulation;
  decap(enc: Uint8Array, skR: Uint8Array): Uint8Array;
  authEncap?(pkR: Uint8Array, skS: Uint8Array, random: RandomSource): KemEncapsulation;
  authDecap?(enc: Uint8Array, skR: Uint8Array, pkS: Uint8Array): Uint8Array;
}

/** DHKEM(X25519, HKDF-SHA256), RFC 9180 §4.1 with §7.1.3 DeriveKeyPair and §7.1.4 validation. */
function makeDhkemX25519(): Kem {
  const N = 32; // Nsecret = Nenc = Npk = Nsk = Ndh = 32
  const suiteId = concat(utf8('KEM'), u16be(KemId.DhkemX25519HkdfSha256));
  const P_DKP_PRK = extractPrefix(suiteId, 'dkp_prk');
  const P_SK = expandPrefix(suiteId, 'sk', N);
  const P_EAE_PRK = extractPrefix(suiteId, 'eae_prk');
  const P_SHARED_SECRET = expandPrefix(suiteId, 'shared_secret', N);

  // pk(skR) is needed by every Decap for kem_context; with the pure-JS provider it is a full
  // scalar multiplication. Cached per secret-key array, checked against a copy (as node.ts does).
  const pkCache = new WeakMap<Uint8Array, { copy: Uint8Array; pk: Uint8Array }>();
  const pkOf = (sk: Uint8Array): Uint8Array => {
    const hit = pkCache.get(sk);
    if (hit !== undefined && equalBytes(hit.copy, sk)) return hit.pk;
    const pk = getProvider().x25519PublicKey(sk);
    pkCache.set(sk, { copy: Uint8Array.from(sk), pk });
    return pk;
  };

  const deriveKeyPair = (ikm: Uint8Array): KemKeyPair => {
    abytes(ikm, 'ikm');
    const dkpPrk = labeledExtract(EMPTY, P_DKP_PRK, ikm);
    const secretKey = labeledExpand(dkpPrk, P_SK, EMPTY, N);
    wipe(dkpPrk);
    return { secretKey, publicKey: getProvider().x25519PublicKey(secretKey) };
  };

  // ExtractAndExpand(dh, kem_context), §4.1.
  const extractAndExpand = (dh: Uint8Array, kemContext: Uint8Array): Uint8Array => {
    const eaePrk = labeledExtract(EMPTY, P_EAE_PRK, dh);
    const sharedSecret = labeledExpand(eaePrk, P_SHARED_SECRET, kemContext, N);
    wipe(eaePrk, dh);
    return sharedSecret;
  };

  // GenerateKeyPair() = DeriveKeyPair(random(Nsk)): the same path the RFC vectors take with ikmE.
  const ephemeral = (random: RandomSource): KemKeyPair => {
    const ikm = abytes(random(N), 'random ikm', N);
    const pair = deriveKeyPair(ikm);
    wipe(ikm);
    return pair;
  };

  return {
    id: KemId.DhkemX25519HkdfSha256,
    name: 'DHKEM(X25519, HKDF-SHA256)',
    nSecret: N,
    nEnc: N,
    nPk: N,
    nSk: N,
    deriveKeyPair,
    generateKeyPair: ephemeral,
    publicKeyOf: (sk) => pkOf(abytes(sk, 'X25519 secret key', N)).slice(),
    encap(pkR, random) {
      abytes(pkR, 'pkR', N);
      const { secretKey: skE, publicKey: enc } = ephemeral(random);
      try {
        const dh = getProvider().x25519(skE, pkR); // CryptoError on an all-zero result
        return { sharedSecret: extractAndExpand(dh, concat(enc, pkR)), enc };
      } finally {
        wipe(skE);
      }
    },
    decap(enc, skR) {
      abytes(enc, 'enc', N);
      abytes(skR, 'skR', N);
      const dh = getProvider().x25519(skR, enc);
      return extractAndExpand(dh, concat(enc, pkOf(skR)));
    },
    authEncap(pkR, skS, random) {
      abytes(pkR, 'pkR', N);
      abytes(skS, 'skS', N);
      const p = getProvider();
      const { secretKey: skE, publicKey: enc } = ephemeral(random);
      try {
        const dh = concat(p.x25519(skE, pkR), p.x25519(skS, pkR));
        return { sharedSecret: extractAndExpand(dh, concat(enc, pkR, pkOf(skS))), enc };
      } finally {
        wipe(skE);
      }
    },
    authDecap(enc, skR, pkS) {
      abytes(enc, 'enc', N);
      abytes(skR, 'skR', N);
      abytes(pkS, 'pkS', N);
      const p = getProvider();
      const dh = concat(p.x25519(skR, enc), p.x25519(skR, pkS));
      return extractAndExpand(dh, concat(enc, pkOf(skR), pkS));
    },
  };
}

/**
 * X-Wing as an HPKE KEM, draft-connolly-cfrg-xwing-kem §5.6: Encap/Decap are X-Wing's own
 * Encapsulate/Decapsulate and its 32-byte `ss` is HPKE's shared_secret as is (no DHKEM-style
 * ExtractAndExpand). DeriveKeyPair(ikm) = GenerateKeyPairDerand(SHAKE256(ikm, 32 bytes)).
 * No AuthEncap/AuthDecap: X-Wing is not an authenticated KEM (draft §1.4).
 */
function makeXWing(): Kem {
  return {
    id: KemId.XWing,
    name: 'X-Wing',
    nSecret: XWING_SHARED_SECRET_LENGTH,
    nEnc: XWING_ENC_LENGTH,
    nPk: XWING_PUBLIC_KEY_LENGTH,
    nSk: XWING_SECRET_KEY_LENGTH,
    deriveKeyPair(ikm) {
      const seed = shake256(abytes(ikm, 'ikm'), { dkLen: XWING_SECRET_KEY_LENGTH });
      const pair = xwingKeyPairFromSeed(seed);
      wipe(seed);
      return pair;
    },
    generateKeyPair: xwingGenerateKeyPair,
    publicKeyOf: xwingPublicKey,
    encap: xwingEncapsulate,
    decap: xwingDecapsulate,
  };
}

const KEMS: ReadonlyMap<number, Kem> = new Map<number, Kem>([
  [KemId.DhkemX25519HkdfSha256, makeDhkemX25519()],
  [KemId.XWing, makeXWing()],
]);

export function getKem(id: KemId): Kem {
  const kem = KEMS.get(id);
  if (kem === undefined) throw new ArgumentError(`HPKE: unsupported KEM 0x${(id as number).toString(16)}`);
  return kem;
}

// ---------------------------------------------------------------------------------------------
// Suites: everything that depends only on (kem, kdf, aead), computed once.

interface SuiteImpl {
  readonly suite: HpkeSuite;
  readonly kem: Kem;
  /** null for export-only. */
  readonly aead: AeadId | null;
  readonly nk: number;
  readonly nn: number;
  readonly pPskIdHash: Uint8Array;
  readonly pInfoHash: Uint8Array;
  readonly pSecret: Uint8Array;
  readonly pKey: Uint8Array;
  readonly pBaseNonce: Uint8Array;
  readonly pExp: Uint8Array;
  /** `"HPKE-v1" || suite_id || "sec"`; I2OSP(L, 2) goes in front per export call. */
  readonly secTail: Uint8Array;
  /** LabeledExtract("", "psk_id_hash", default_psk_id): the same for every base/auth setup. */
  readonly defaultPskIdHash: Uint8Array;
  /**
   * The last info and its info_hash. An envelope wraps its key for every recipient under one
   * `info`, so this saves one HMAC per recipient; `info` is public, and the copy is compared in full.
   */
  lastInfo?: { readonly info: Uint8Array; readonly hash: Uint8Array };
}

const AEAD_PARAMS: ReadonlyMap<number, { aead: AeadId | null; nk: number; nn: number }> = new Map([
  [HpkeAeadId.Aes128Gcm, { aead: AeadId.Aes128Gcm, nk: 16, nn: 12 }],
  [HpkeAeadId.ChaCha20Poly1305, { aead: AeadId.ChaCha20Poly1305, nk: 32, nn: 12 }],
  [HpkeAeadId.ExportOnly, { aead: null, nk: 0, nn: 0 }],
]);

const AEAD_TAG_LENGTH = 16;

const suites = new Map<number, SuiteImpl>();

function suiteImpl(suite: HpkeSuite): SuiteImpl {
  if (typeof suite !== 'object' || suite === null) throw new ArgumentError('HPKE: suite must be { kem, kdf, aead }');
  const { kem: kemId, kdf, aead: aeadId } = suite;
  const cacheKey = (kemId & 0xffff) * 2 ** 32 + (kdf & 0xffff) * 2 ** 16 + (aeadId & 0xffff);
  const hit = suites.get(cacheKey);
  if (hit !== undefined && hit.suite.kem === kemId && hit.suite.kdf === kdf && hit.suite.aead === aeadId) return hit;
  const kem = getKem(kemId);
  if (kdf !== KdfId.HkdfSha256) throw new ArgumentError(`HPKE: unsupported KDF 0x${(kdf as number).toString(16)}`);
  const params = AEAD_PARAMS.get(aeadId);
  if (params === undefined) throw new ArgumentError(`HPKE: unsupported AEAD 0x${(aeadId as number).toString(16)}`);
  // suite_id = "HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2), §5.1.
  const suiteId = concat(utf8('HPKE'), u16be(kemId), u16be(kdf), u16be(aeadId));
  const pPskIdHash = extractPrefix(suiteId, 'psk_id_hash');
  const impl: SuiteImpl = {
    suite: Object.freeze({ kem: kemId, kdf, aead: aeadId }),
    kem,
    aead: params.aead,
    nk: params.nk,
    nn: params.nn,
    pPskIdHash,
    pInfoHash: extractPrefix(suiteId, 'info_hash'),
    pSecret: extractPrefix(suiteId, 'secret'),
    pKey: expandPrefix(suiteId, 'key', params.nk),
    pBaseNonce: expandPrefix(suiteId, 'base_nonce', params.nn),
    pExp: expandPrefix(suiteId, 'exp', HASH_LEN),
    secTail: extractPrefix(suiteId, 'sec'),
    defaultPskIdHash: labeledExtract(EMPTY, pPskIdHash, EMPTY),
  };
  suites.set(cacheKey, impl);
  return impl;
}

// ---------------------------------------------------------------------------------------------
// Key schedule (§5.1).

/** Minimum PSK length: §5.1.2 requires at least 32 bytes of entropy, so shorter cannot qualify. */
export const MIN_PSK_LENGTH = 32;

/** VerifyPSKInputs, §5.1, plus the 32-byte floor. Inputs are the caller's, so ArgumentError. */
function verifyPskInputs(mode: Mode, psk: Uint8Array, pskId: Uint8Array): void {
  const gotPsk = psk.length !== 0;
  const gotPskId = pskId.length !== 0;
  if (gotPsk !== gotPskId) throw new ArgumentError('HPKE: inconsistent PSK inputs (psk and pskId go together)');
  const pskMode = mode === Mode.Psk || mode === Mode.AuthPsk;
  if (gotPsk && !pskMode) throw new ArgumentError('HPKE: PSK input provided when not needed');
  if (!gotPsk && pskMode) throw new ArgumentError('HPKE: missing required PSK input');
  if (gotPsk && psk.length < MIN_PSK_LENGTH) throw new ArgumentError(`HPKE: psk must be at least ${MIN_PSK_LENGTH} bytes`);
}

/** Every intermediate value of KeySchedule<ROLE>(), §5.1, as named in the RFC's test vectors. */
export interface KeyScheduleValues {
  readonly keyScheduleContext: Uint8Array;
  readonly secret: Uint8Array;
  /** Empty for export-only suites (Nk = 0). */
  readonly key: Uint8Array;
  /** Empty for export-only suites (Nn = 0). */
  readonly baseNonce: Uint8Array;
  readonly exporterSecret: Uint8Array;
}

/** Longer `info` values are hashed every time rather than copied into the cache. */
const MAX_CACHED_INFO = 4096;

function schedule(s: SuiteImpl, mode: Mode, sharedSecret: Uint8Array, info: Uint8Array, psk: Uint8Array, pskId: Uint8Array) {
  verifyPskInputs(mode, psk, pskId);
  const pskIdHash = pskId.length === 0 ? s.defaultPskIdHash : labeledExtract(EMPTY, s.pPskIdHash, pskId);
  let infoHash: Uint8Array;
  if (s.lastInfo !== undefined && equalBytes(s.lastInfo.info, info)) {
    infoHash = s.lastInfo.hash;
  } else {
    infoHash = labeledExtract(EMPTY, s.pInfoHash, info);
    if (info.length <= MAX_CACHED_INFO) s.lastInfo = { info: info.slice(), hash: infoHash };
  }
  // key_schedule_context = mode || psk_id_hash || info_hash
  const keyScheduleContext = new Uint8Array(1 + 2 * HASH_LEN);
  keyScheduleContext[0] = mode;
  keyScheduleContext.set(pskIdHash, 1);
  keyScheduleContext.set(infoHash, 1 + HASH_LEN);
  const secret = labeledExtract(sharedSecret, s.pSecret, psk);
  // With Nk = Nn = 0 (export-only) these are empty and hkdfExpand computes no HMAC at all.
  const key = labeledExpand(secret, s.pKey, keyScheduleContext, s.nk);
  const baseNonce = labeledExpand(secret, s.pBaseNonce, keyScheduleContext, s.nn);
  const exporterSecret = labeledExpand(secret, s.pExp, keyScheduleContext, HASH_LEN);
  return { keyScheduleContext, secret, key, baseNonce, exporterSecret };
}

/**
 * KeySchedule(mode, shared_secret, info, psk, psk_id) of §5.1, returning every intermediate
 * value. The contexts use exactly this; it is exported for known-answer tests and reviewers.
 */
export function keySchedule(
  suite: HpkeSuite,
  mode: Mode,
  sharedSecret: Uint8Array,
  info: Uint8Array,
  psk: Uint8Array = EMPTY,
  pskId: Uint8Array = EMPTY,
): KeyScheduleValues {
  const s = suiteImpl(suite);
  checkMode(mode);
  abytes(sharedSecret, 'sharedSecret', s.kem.nSecret);
  abytes(info, 'info');
  abytes(psk, 'psk');
  abytes(pskId, 'pskId');
  return schedule(s, mode, sharedSecret, info, psk, pskId);
}

function checkMode(mode: Mode): void {
  if (mode !== Mode.Base && mode !== Mode.Psk && mode !== Mode.Auth && mode !== Mode.AuthPsk) {
    throw new ArgumentError(`HPKE: unknown mode ${String(mode)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Contexts (§5.2 encryption, §5.3 export).

abstract class HpkeContext {
  readonly suite: HpkeSuite;
  /** @internal */ protected readonly impl: SuiteImpl;
  /** @internal */ protected readonly key: Uint8Array;
  /** @internal */ protected readonly baseNonce: Uint8Array;
  /** @internal */ protected readonly exporterSecret: Uint8Array;
  /** The RFC's `seq`: messages sealed or opened so far. Mutated only on success. */
  protected nextSeq = 0;

  protected constructor(impl: SuiteImpl, values: KeyScheduleValues) {
    this.impl = impl;
    this.suite = impl.suite;
    this.key = values.key;
    this.baseNonce = values.baseNonce;
    this.exporterSecret = values.exporterSecret;
    wipe(values.secret);
  }

  /** The sequence number the next seal/open will use. */
  get seq(): number {
    return this.nextSeq;
  }

  /**
   * Context.Export(exporter_context, L), §5.3: LabeledExpand(exporter_secret, "sec",
   * exporter_context, L), for 0 <= L <= 255 * Nh.
   */
  export(exporterContext: Uint8Array, length: number): Uint8Array {
    abytes(exporterContext, 'exporterContext');
    if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_LEN) {
      throw new ArgumentError(`HPKE export: length must be 0..${255 * HASH_LEN}, got ${length}`);
    }
    const prefix = new Uint8Array(2 + this.impl.secTail.length + exporterContext.length);
    prefix[0] = length >>> 8;
    prefix[1] = length & 0xff;
    prefix.set(this.impl.secTail, 2);
    prefix.set(exporterContext, 2 + this.impl.secTail.length);
    return hkdfExpand(this.exporterSecret, prefix, length);
  }

  /** ComputeNonce(seq), §5.2: base_nonce XOR I2OSP(seq, Nn). seq < 2^53 touches the low 7 bytes only. */
  protected nonce(seq: number): Uint8Array {
    const n = this.baseNonce.slice();
    const end = n.length;
    let hi = Math.floor(seq / 2 ** 32);
    let lo = seq >>> 0;
    for (let i = 0; i < 4; i++, lo >>>= 8) n[end - 1 - i] = (n[end - 1 - i] as number) ^ (lo & 0xff);
    for (let i = 4; i < 8; i++, hi >>>= 8) n[end - 1 - i] = (n[end - 1 - i] as number) ^ (hi & 0xff);
    return n;
  }
}

/** ContextS: seals (§5.2) and exports (§5.3). `enc` is what the recipient needs to set up. */
export class SenderContext extends HpkeContext {
  readonly enc: Uint8Array;

  /** @internal Use the setup*S functions. */
  constructor(impl: SuiteImpl, values: KeyScheduleValues, enc: Uint8Array) {
    super(impl, values);
    this.enc = enc;
  }

  /** ContextS.Seal(aad, pt). Refused (SealError) once the sequence number would overflow. */
  seal(aad: Uint8Array, pt: Uint8Array): Uint8Array {
    abytes(aad, 'aad');
    abytes(pt, 'pt');
    const aead = this.impl.aead;
    if (aead === null) throw new ArgumentError('HPKE: an export-only context cannot seal');
    // Checked before encrypting rather than after (§5.2's IncrementSeq), so no ciphertext is lost.
    if (this.nextSeq >= MAX_SEQUENCE) throw new SealError('HPKE: message limit of this context reached');
    const ct = getProvider().aeadSeal(aead, this.key, this.nonce(this.nextSeq), pt, aad);
    this.nextSeq++;
    return ct;
  }
}

/** ContextR: opens (§5.2) and exports (§5.3). */
export class RecipientContext extends HpkeContext {
  /** @internal Use the setup*R functions. */
  constructor(impl: SuiteImpl, values: KeyScheduleValues) {
    super(impl, values);
  }

  /**
   * ContextR.Open(aad, ct). Every failure (short or forged ct, overflow, export-only suite) is the
   * same OpenError, and leaves the sequence number unchanged.
   */
  open(aad: Uint8Array, ct: Uint8Array): Uint8Array {
    abytes(aad, 'aad');
    abytes(ct, 'ct');
    const aead = this.impl.aead;
    if (aead === null) throw new OpenError('export-only context');
    if (this.nextSeq >= MAX_SEQUENCE) throw new OpenError('message limit reached');
    if (ct.length < AEAD_TAG_LENGTH) throw new OpenError('ciphertext shorter than the tag');
    let pt: Uint8Array | null;
    try {
      pt = getProvider().aeadOpen(aead, this.key, this.nonce(this.nextSeq), ct, aad);
    } catch {
      pt = null;
    }
    if (pt === null) throw new OpenError('AEAD authentication failed');
    this.nextSeq++;
    return pt;
  }
}

// ---------------------------------------------------------------------------------------------
// Setup (§5.1.1-§5.1.4) and single-shot (§6.1).

function senderRandom(kem: Kem, options: HpkeSenderOptions | undefined): RandomSource {
  if (options?.ikmEForTesting !== undefined) {
    if (kem.id !== KemId.DhkemX25519HkdfSha256) throw new ArgumentError('HPKE: ikmEForTesting applies to DHKEM only');
    return fixedRandom(abytes(options.ikmEForTesting, 'ikmEForTesting', kem.nSk), 'ikmEForTesting');
  }
  if (options?.eseedForTesting !== undefined) {
    if (kem.id !== KemId.XWing) throw new ArgumentError('HPKE: eseedForTesting applies to X-Wing only');
    return fixedRandom(abytes(options.eseedForTesting, 'eseedForTesting', XWING_ESEED_LENGTH), 'eseedForTesting');
  }
  return randomFrom(options);
}

/** A source that yields a copy of `bytes` exactly once (the KEM wipes what it draws). */
function fixedRandom(bytes: Uint8Array, title: string): RandomSource {
  let used = false;
  return (length) => {
    if (used || length !== bytes.length) throw new ArgumentError(`HPKE: ${title} must be drawn once as ${bytes.length} bytes`);
    used = true;
    return bytes.slice();
  };
}

function authKem(kem: Kem): Required<Pick<Kem, 'authEncap' | 'authDecap'>> {
  if (kem.authEncap === undefined || kem.authDecap === undefined) {
    throw new ArgumentError(`HPKE: ${kem.name} has no Auth modes`);
  }
  return { authEncap: kem.authEncap.bind(kem), authDecap: kem.authDecap.bind(kem) };
}

function sender(
  suite: HpkeSuite,
  mode: Mode,
  pkR: Uint8Array,
  info: Uint8Array,
  psk: Uint8Array,
  pskId: Uint8Array,
  skS: Uint8Array | undefined,
  options: HpkeSenderOptions | undefined,
): SenderContext {
  const s = suiteImpl(suite);
  const auth = skS === undefined ? undefined : authKem(s.kem);
  abytes(pkR, 'pkR', s.kem.nPk);
  abytes(info, 'info');
  abytes(psk, 'psk');
  abytes(pskId, 'pskId');
  if (skS !== undefined) abytes(skS, 'skS', s.kem.nSk);
  verifyPskInputs(mode, psk, pskId); // before the KEM, so a bad call costs no public-key work
  const random = senderRandom(s.kem, options);
  const { sharedSecret, enc } = auth !== undefined && skS !== undefined ? auth.authEncap(pkR, skS, random) : s.kem.encap(pkR, random);
  const values = schedule(s, mode, sharedSecret, info, psk, pskId);
  wipe(sharedSecret);
  return new SenderContext(s, values, enc);
}

function recipient(
  suite: HpkeSuite,
  mode: Mode,
  enc: Uint8Array,
  skR: Uint8Array,
  info: Uint8Array,
  psk: Uint8Array,
  pskId: Uint8Array,
  pkS: Uint8Array | undefined,
): RecipientContext {
  const s = suiteImpl(suite);
  const auth = pkS === undefined ? undefined : authKem(s.kem);
  // The caller's own inputs: mistakes are ArgumentErrors.
  abytes(skR, 'skR', s.kem.nSk);
  abytes(info, 'info');
  abytes(psk, 'psk');
  abytes(pskId, 'pskId');
  if (pkS !== undefined) abytes(pkS, 'pkS', s.kem.nPk);
  verifyPskInputs(mode, psk, pskId);
  abytes(enc, 'enc'); // type only: a wrong length is received data, hence OpenError below
  let sharedSecret: Uint8Array;
  try {
    if (enc.length !== s.kem.nEnc) throw new OpenError('enc has the wrong length');
    sharedSecret = auth !== undefined && pkS !== undefined ? auth.authDecap(enc, skR, pkS) : s.kem.decap(enc, skR);
  } catch {
    // A low-order ephemeral (or sender) key ends here, indistinguishable from any other failure.
    throw new OpenError('KEM decapsulation failed');
  }
  const values = schedule(s, mode, sharedSecret, info, psk, pskId);
  wipe(sharedSecret);
  return new RecipientContext(s, values);
}

/** SetupBaseS(pkR, info), §5.1.1. */
export function setupBaseS(suite: HpkeSuite, pkR: Uint8Array, info: Uint8Array, options?: HpkeSenderOptions): SenderContext {
  return sender(suite, Mode.Base, pkR, info, EMPTY, EMPTY, undefined, options);
}

/** SetupBaseR(enc, skR, info), §5.1.1. */
export function setupBaseR(suite: HpkeSuite, enc: Uint8Array, skR: Uint8Array, info: Uint8Array): RecipientContext {
  return recipient(suite, Mode.Base, enc, skR, info, EMPTY, EMPTY, undefined);
}

/** SetupPSKS(pkR, info, psk, psk_id), §5.1.2. */
export function setupPskS(
  suite: HpkeSuite,
  pkR: Uint8Array,
  info: Uint8Array,
  psk: Uint8Array,
  pskId: Uint8Array,
  options?: HpkeSenderOptions,
): SenderContext {
  return sender(suite, Mode.Psk, pkR, info, psk, pskId, undefined, options);
}

/** SetupPSKR(enc, skR, info, psk, psk_id), §5.1.2. */
export function setupPskR(
  suite: HpkeSuite,
  enc: Uint8Array,
  skR: Uint8Array,
  info: Uint8Array,
  psk: Uint8Array,
  pskId: Uint8Array,
): RecipientContext {
  return recipient(suite, Mode.Psk, enc, skR, info, psk, pskId, undefined);
}

/** SetupAuthS(pkR, info, skS), §5.1.3. DHKEM only. */
export function setupAuthS(
  suite: HpkeSuite,
  pkR: Uint8Array,
  info: Uint8Array,
  skS: Uint8Array,
  options?: HpkeSenderOptions,
): SenderContext {
  return sender(suite, Mode.Auth, pkR, info, EMPTY, EMPTY, skS, options);
}

/** SetupAuthR(enc, skR, info, pkS), §5.1.3. DHKEM only. */
export function setupAuthR(suite: HpkeSuite, enc: Uint8Array, skR: Uint8Array, info: Uint8Array, pkS: Uint8Array): RecipientContext {
  return recipient(suite, Mode.Auth, enc, skR, info, EMPTY, EMPTY, pkS);
}

/** SetupAuthPSKS(pkR, info, psk, psk_id, skS), §5.1.4. DHKEM only. */
export function setupAuthPskS(
  suite: HpkeSuite,
  pkR: Uint8Array,
  info: Uint8Array,
  psk: Uint8Array,
  pskId: Uint8Array,
  skS: Uint8Array,
  options?: HpkeSenderOptions,
): SenderContext {
  return sender(suite, Mode.AuthPsk, pkR, info, psk, pskId, skS, options);
}

/** SetupAuthPSKR(enc, skR, info, psk, psk_id, pkS), §5.1.4. DHKEM only. */
export function setupAuthPskR(
  suite: HpkeSuite,
  enc: Uint8Array,
  skR: Uint8Array,
  info: Uint8Array,
  psk: Uint8Array,
  pskId: Uint8Array,
  pkS: Uint8Array,
): RecipientContext {
  return recipient(suite, Mode.AuthPsk, enc, skR, info, psk, pskId, pkS);
}

/** SealBase(pkR, info, aad, pt), §6.1: one message, one fresh context. */
export function sealBase(
  suite: HpkeSuite,
  pkR: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  pt: Uint8Array,
  options?: HpkeSenderOptions,
): { enc: Uint8Array; ct: Uint8Array } {
  // Refused before any public-key work: an export-only suite has nothing to seal with.
  if (suiteImpl(suite).aead === null) throw new ArgumentError('HPKE: an export-only suite cannot seal');
  const ctx = setupBaseS(suite, pkR, info, options);
  return { enc: ctx.enc, ct: ctx.seal(aad, pt) };
}

/** OpenBase(enc, skR, info, aad, ct), §6.1. */
export function openBase(
  suite: HpkeSuite,
  enc: Uint8Array,
  skR: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  ct: Uint8Array,
): Uint8Array {
  return setupBaseR(suite, enc, skR, info).open(aad, ct);
}
