/**
 * Safety numbers: a 60-digit number two people compare out of band (read aloud, or by scanning a
 * QR code) to confirm that each holds the other's real identity key. Implements
 * spec/identity.md §11.
 *
 * The idea is Signal's numeric fingerprint (an iterated SHA-512 over the identity key, 5,200
 * rounds, 30 digits per person, the two halves sorted so that both sides see the same number);
 * the inputs and domain separation are Valise's: the person's identity key and 16-byte person id.
 * Device keys are not part of the number: devices are signed by the identity key, so any device
 * added without the person's key needs a new identity key, which changes the number.
 */
import { abytes, compareBytes, equalBytes, toHex, u16be } from './bytes.js';
import { decodeStructure, encodeStructure, StructType } from './cbor.js';
import { ArgumentError, DecodeError } from './errors.js';
import { Label, labelled } from './labels.js';
import { getProvider } from './provider.js';

/** Rounds of SHA-512 (the same count as Signal's, > 112 bits of work against a targeted collision). */
export const SAFETY_NUMBER_ITERATIONS = 5200;
/** Version of the algorithm, hashed in and carried by the QR payload. */
export const SAFETY_NUMBER_VERSION = 0;
/** Length of one person's fingerprint in the QR payload. */
export const SAFETY_NUMBER_FINGERPRINT_LENGTH = 32;
/** Largest accepted QR payload encoding. */
export const SAFETY_NUMBER_PAYLOAD_MAX_SIZE = 128;

/** What identifies one side of a safety number. A {@link PersonCert} has both fields. */
export interface SafetyNumberParty {
  /** Ed25519 identity key, 32 bytes. */
  identityKey: Uint8Array;
  /** 16 bytes. */
  personId: Uint8Array;
}

export interface PersonFingerprint {
  /** 30 decimal digits. */
  digits: string;
  /** First 32 bytes of the final hash, for the QR payload. */
  fingerprint: Uint8Array;
}

/**
 * Recently computed halves, by identity key and person id. 5,200 hashes cost 10–40 ms and a
 * client shows the same numbers again and again; the inputs and outputs are public, and every
 * provider gives the same result, so a small cache is safe. Callers get copies.
 */
const CACHE_SIZE = 256;
const cache = new Map<string, PersonFingerprint>();

/**
 * One person's half: h = labelled("valise/v1/safety-number", u16be(0) || identityKey || personId),
 * then 5,200 times h = SHA-512(h || identityKey); 30 digits from the first 30 bytes of h, and the
 * first 32 bytes of h as the fingerprint.
 */
export function personFingerprint(party: SafetyNumberParty): PersonFingerprint {
  const key = abytes(party?.identityKey, 'identityKey', 32);
  const personId = abytes(party.personId, 'personId', 16);
  const id = toHex(key) + toHex(personId);
  let hit = cache.get(id);
  if (hit === undefined) {
    hit = computeFingerprint(key, personId);
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    cache.set(id, hit);
  }
  return { digits: hit.digits, fingerprint: hit.fingerprint.slice() };
}

function computeFingerprint(key: Uint8Array, personId: Uint8Array): PersonFingerprint {
  const sha512 = getProvider().sha512;
  // Round 1 hashes the labelled seed; later rounds reuse one buffer: h (64 bytes) || identityKey.
  const first = labelled(Label.SafetyNumber, u16be(SAFETY_NUMBER_VERSION), key, personId);
  const buf = new Uint8Array(first.length + 32);
  buf.set(first, 0);
  buf.set(key, first.length);
  let h = sha512(buf);
  const round = new Uint8Array(64 + 32);
  round.set(key, 64);
  for (let i = 1; i < SAFETY_NUMBER_ITERATIONS; i++) {
    round.set(h, 0);
    h = sha512(round);
  }
  let digits = '';
  for (let chunk = 0; chunk < 6; chunk++) {
    let v = 0;
    // A 5-byte big-endian integer is below 2^40: exact in a double.
    for (let j = 0; j < 5; j++) v = v * 256 + (h[chunk * 5 + j] as number);
    digits += String(v % 100000).padStart(5, '0');
  }
  return { digits, fingerprint: h.slice(0, SAFETY_NUMBER_FINGERPRINT_LENGTH) };
}

/** The 60-digit safety number of two people: their two 30-digit halves, sorted, concatenated. */
export function safetyNumber(a: SafetyNumberParty, b: SafetyNumberParty): string {
  const x = personFingerprint(a).digits;
  const y = personFingerprint(b).digits;
  return x <= y ? x + y : y + x;
}

/** "12345 67890 ..." : 12 blocks of 5 digits separated by single spaces. */
export function formatSafetyNumber(safetyNumber: string): string {
  if (typeof safetyNumber !== 'string' || !/^[0-9]{60}$/.test(safetyNumber)) {
    throw new ArgumentError('formatSafetyNumber: expected a string of 60 decimal digits');
  }
  return safetyNumber.match(/[0-9]{5}/g)!.join(' ');
}

function payloadFor(x: Uint8Array, y: Uint8Array): Uint8Array {
  const [lo, hi] = compareBytes(x, y) <= 0 ? [x, y] : [y, x];
  return encodeStructure(StructType.SafetyNumberPayload, [
    [2, SAFETY_NUMBER_VERSION],
    [3, lo],
    [4, hi],
  ]);
}

/** The QR payload: {0: 1, 1: 20, 2: version 0, 3: smaller fingerprint, 4: larger fingerprint}. */
export function encodeSafetyNumberPayload(mine: SafetyNumberParty, theirs: SafetyNumberParty): Uint8Array {
  return payloadFor(personFingerprint(mine).fingerprint, personFingerprint(theirs).fingerprint);
}

/** Strictly decodes a scanned payload (DecodeError if it is not one), returning the two fingerprints. */
export function decodeSafetyNumberPayload(bytes: Uint8Array): { version: number; fingerprints: [Uint8Array, Uint8Array] } {
  const what = 'safety number payload';
  const r = decodeStructure(bytes, StructType.SafetyNumberPayload, SAFETY_NUMBER_PAYLOAD_MAX_SIZE, what);
  const version = r.uint(2, 'version');
  if (version !== SAFETY_NUMBER_VERSION) throw new DecodeError(`${what}: unsupported version ${version}`);
  const a = r.bytes(3, 'fingerprintA', { len: SAFETY_NUMBER_FINGERPRINT_LENGTH });
  const b = r.bytes(4, 'fingerprintB', { len: SAFETY_NUMBER_FINGERPRINT_LENGTH });
  if (compareBytes(a, b) > 0) throw new DecodeError(`${what}: fingerprints not in ascending order`);
  r.done();
  return { version, fingerprints: [a, b] };
}

/**
 * True if a scanned QR payload is the one for these two people (in either order), false if it is
 * a well-formed payload for other keys: someone's key changed, or the scan shows another
 * conversation. Throws {@link DecodeError} if the scan is not a safety number payload at all.
 * The comparison is constant-time in the contents.
 */
export function verifySafetyNumberPayload(scanned: Uint8Array, mine: SafetyNumberParty, theirs: SafetyNumberParty): boolean {
  decodeSafetyNumberPayload(scanned);
  // Decoding is canonical, so equal fields <=> equal bytes.
  return equalBytes(scanned, encodeSafetyNumberPayload(mine, theirs));
}
