/**
 * spec/identity.md "Safety numbers": an iterated SHA-512 per person (after Signal's numeric
 * fingerprints), 30 digits each, sorted into 60; and the QR payload.
 */
import { sha512 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concat, toHex, u16be, utf8 } from '../src/bytes.js';
import { type CborMap, decodeCbor, encodeCbor } from '../src/cbor.js';
import { ArgumentError, DecodeError } from '../src/errors.js';
import { generateOrgRoot, generatePersonIdentity, issuePersonCert } from '../src/identity.js';
import { deterministicRandomForTesting } from '../src/random.js';
import {
  decodeSafetyNumberPayload,
  encodeSafetyNumberPayload,
  formatSafetyNumber,
  personFingerprint,
  SAFETY_NUMBER_ITERATIONS,
  type SafetyNumberParty,
  safetyNumber,
  verifySafetyNumberPayload,
} from '../src/safety-number.js';

/** The algorithm as spec/identity.md states it, written independently on @noble/hashes. */
function reference(p: SafetyNumberParty): { digits: string; fingerprint: string } {
  const label = utf8('valise/v1/safety-number');
  let h = concat(u16be(label.length), label, u16be(0), p.identityKey, p.personId);
  for (let i = 0; i < 5200; i++) h = sha512(concat(h, p.identityKey));
  let digits = '';
  for (let c = 0; c < 6; c++) {
    const v = h.slice(c * 5, c * 5 + 5).reduce((acc, b) => acc * 256n + BigInt(b), 0n);
    digits += (v % 100000n).toString().padStart(5, '0');
  }
  return { digits, fingerprint: toHex(h.slice(0, 32)) };
}

const rnd = deterministicRandomForTesting('safety-number.test.ts');
const party = (): SafetyNumberParty => ({ identityKey: rnd(32).slice(), personId: rnd(16).slice() });
const alice = party();
const bob = party();
const carol = party();

const fixedA: SafetyNumberParty = { identityKey: new Uint8Array(32).fill(1), personId: new Uint8Array(16).fill(2) };
const fixedB: SafetyNumberParty = { identityKey: new Uint8Array(32).fill(3), personId: new Uint8Array(16).fill(4) };

describe('safety numbers', () => {
  it('follow the specified algorithm (independent reimplementation)', () => {
    expect(SAFETY_NUMBER_ITERATIONS).toBe(5200);
    for (const p of [alice, bob, fixedA]) {
      const mine = personFingerprint(p);
      const ref = reference(p);
      expect(mine.digits).toBe(ref.digits);
      expect(toHex(mine.fingerprint)).toBe(ref.fingerprint);
    }
  });

  it('match a pinned vector (identical under both providers)', () => {
    // The worked example of spec/identity.md.
    expect(personFingerprint(fixedA).digits).toBe('014362434616111519109348997164');
    expect(toHex(personFingerprint(fixedA).fingerprint)).toBe('b92c94d63cfc9054a29ad2c4cbb2ef9bb8d75a06408e44ff918d8e96342c5aa4');
    expect(personFingerprint(fixedB).digits).toBe('653968209694023975751491158596');
    expect(toHex(personFingerprint(fixedB).fingerprint)).toBe('55ccac51f4d008196ef0da1db0c2e7943637f8878cd3c3537fddc86cfe44810f');
    expect(formatSafetyNumber(safetyNumber(fixedB, fixedA))).toBe(
      '01436 24346 16111 51910 93489 97164 65396 82096 94023 97575 14911 58596',
    );
    expect(toHex(encodeSafetyNumberPayload(fixedA, fixedB))).toBe(
      'a500010114020003582055ccac51f4d008196ef0da1db0c2e7943637f8878cd3c3537fddc86cfe44810f045820b92c94d63cfc9054a29ad2c4cbb2ef9bb8d75a06408e44ff918d8e96342c5aa4',
    );
    const n = safetyNumber(fixedA, fixedB);
    expect(n).toMatch(/^[0-9]{60}$/);
    expect(n.slice(0, 30) <= n.slice(30)).toBe(true);
    expect(n).toContain('014362434616111519109348997164');
    expect(formatSafetyNumber(n).split(' ')).toHaveLength(12);
  });

  it('are the same for both people, whichever side computes them', () => {
    const ab = safetyNumber(alice, bob);
    expect(safetyNumber(bob, alice)).toBe(ab);
    expect(ab).toHaveLength(60);
    const halves = [personFingerprint(alice).digits, personFingerprint(bob).digits].sort();
    expect(ab).toBe(halves.join(''));
    expect(safetyNumber(alice, carol)).not.toBe(ab);
  });

  it('change whenever an identity key or a person id changes (property)', () => {
    const base = safetyNumber(alice, bob);
    const scanned = encodeSafetyNumberPayload(alice, bob);
    fc.assert(
      fc.property(fc.boolean(), fc.nat({ max: 32 * 8 - 1 }), fc.nat({ max: 16 * 8 - 1 }), (changeKey, keyBit, idBit) => {
        const changed = { identityKey: Uint8Array.from(alice.identityKey), personId: Uint8Array.from(alice.personId) };
        if (changeKey) changed.identityKey[keyBit >>> 3] = (changed.identityKey[keyBit >>> 3] as number) ^ (1 << (keyBit & 7));
        else changed.personId[idBit >>> 3] = (changed.personId[idBit >>> 3] as number) ^ (1 << (idBit & 7));
        expect(safetyNumber(changed, bob)).not.toBe(base);
        expect(verifySafetyNumberPayload(scanned, changed, bob)).toBe(false);
      }),
      { numRuns: 12 },
    );
  });

  it('are formatted as 12 blocks of 5 digits', () => {
    const n = '0123456789'.repeat(6);
    expect(formatSafetyNumber(n)).toBe('01234 56789 01234 56789 01234 56789 01234 56789 01234 56789 01234 56789');
    for (const bad of ['', '1'.repeat(59), '1'.repeat(61), `${'1'.repeat(59)}a`, `${'1'.repeat(59)}\n`]) {
      expect(() => formatSafetyNumber(bad)).toThrow(ArgumentError);
    }
  });

  it('accept a person certificate as a party', () => {
    const o = { randomForTesting: deterministicRandomForTesting('safety-number.test.ts/cert') };
    const root = generateOrgRoot(o);
    const id = generatePersonIdentity(o);
    const cert = issuePersonCert(root, { identityKey: id.publicKey, name: 'A', title: 'T', unit: 'U', validFrom: 0, validUntil: 1 }, o);
    expect(safetyNumber(cert, bob)).toBe(safetyNumber({ identityKey: id.publicKey, personId: cert.personId }, bob));
  });

  it('refuse keys and ids of the wrong length', () => {
    expect(() => personFingerprint({ identityKey: new Uint8Array(31), personId: new Uint8Array(16) })).toThrow(ArgumentError);
    expect(() => personFingerprint({ identityKey: new Uint8Array(32), personId: new Uint8Array(17) })).toThrow(ArgumentError);
  });
});

describe('safety number QR payload', () => {
  const payload = encodeSafetyNumberPayload(alice, bob);

  it('is a structure of type 20 with version 0 and the two fingerprints sorted', () => {
    const m = decodeCbor(payload, 128) as CborMap;
    expect([...m.keys()]).toEqual([0, 1, 2, 3, 4]);
    expect([m.get(0), m.get(1), m.get(2)]).toEqual([1, 20, 0]);
    const fps = [reference(alice).fingerprint, reference(bob).fingerprint].sort();
    expect([toHex(m.get(3) as Uint8Array), toHex(m.get(4) as Uint8Array)]).toEqual(fps);
    expect(toHex(encodeSafetyNumberPayload(bob, alice))).toBe(toHex(payload));
    const d = decodeSafetyNumberPayload(payload);
    expect(d.version).toBe(0);
    expect(d.fingerprints.map(toHex)).toEqual(fps);
  });

  it('verifies from either side, and fails for anyone else', () => {
    expect(verifySafetyNumberPayload(payload, alice, bob)).toBe(true);
    expect(verifySafetyNumberPayload(payload, bob, alice)).toBe(true);
    expect(verifySafetyNumberPayload(payload, alice, carol)).toBe(false);
    expect(verifySafetyNumberPayload(encodeSafetyNumberPayload(alice, carol), alice, bob)).toBe(false);
  });

  it('rejects malformed scans with DecodeError', () => {
    const m = decodeCbor(payload, 128) as CborMap;
    const edits: ((x: CborMap) => void)[] = [
      (x) => x.set(2, 1),
      (x) => x.set(5, 0),
      (x) => x.delete(4),
      (x) => x.set(3, new Uint8Array(31)),
      (x) => {
        const a = x.get(3);
        x.set(3, x.get(4) as Uint8Array);
        x.set(4, a as Uint8Array);
      },
      (x) => x.set(1, 6),
    ];
    for (const edit of edits) {
      const copy: CborMap = new Map(m);
      edit(copy);
      expect(() => verifySafetyNumberPayload(encodeCbor(copy), alice, bob)).toThrow(DecodeError);
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        expect(() => decodeSafetyNumberPayload(b)).toThrow(DecodeError);
      }),
      { numRuns: 300 },
    );
  });

  it('never accepts a payload with a flipped bit', () => {
    fc.assert(
      fc.property(fc.nat({ max: payload.length * 8 - 1 }), (bit) => {
        const bad = Uint8Array.from(payload);
        bad[bit >>> 3] = (bad[bit >>> 3] as number) ^ (1 << (bit & 7));
        let ok: boolean;
        try {
          ok = verifySafetyNumberPayload(bad, alice, bob);
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
          return;
        }
        expect(ok).toBe(false);
      }),
      { numRuns: 25 },
    );
  });

  it('does not modify its inputs', () => {
    const before = structuredClone({ alice, bob, payload });
    verifySafetyNumberPayload(payload, alice, bob);
    safetyNumber(alice, bob);
    expect({ alice, bob, payload }).toEqual(before);
  });
});
