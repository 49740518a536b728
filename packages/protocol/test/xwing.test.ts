import { readFileSync } from 'node:fs';
import { shake256 } from '@noble/hashes/sha3.js';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.js';
import { ArgumentError, CryptoError, OpenError } from '../src/errors.js';
import { getKem, HpkeAeadId, KdfId, KemId, openBase, sealBase, setupAuthS, setupBaseR, setupBaseS } from '../src/hpke.js';
import { getProvider } from '../src/provider.js';
import { deterministicRandomForTesting } from '../src/random.js';
import {
  XWING_ENC_LENGTH,
  XWING_PUBLIC_KEY_LENGTH,
  XWING_SECRET_KEY_LENGTH,
  XWING_SHARED_SECRET_LENGTH,
  xwingDecapsulate,
  xwingEncapsulate,
  xwingEncapsulateDerand,
  xwingKeyPairFromSeed,
  xwingPublicKey,
  xwingX25519PublicKey,
  xwingX25519SecretKey,
} from '../src/xwing.js';

/** test-vectors/external/xwing-draft-vectors.json, as it is written. */
interface XWingVectorFile {
  source: string;
  construction: string;
  notes: string[];
  vectors: { seed: string; sk: string; pk: string; eseed: string; ct: string; ss: string }[];
}

const file: XWingVectorFile = JSON.parse(
  readFileSync(new URL('../../../test-vectors/external/xwing-draft-vectors.json', import.meta.url), 'utf8'),
);

const flip = (b: Uint8Array, bit: number): Uint8Array => {
  const out = b.slice();
  out[bit >> 3] = (out[bit >> 3] as number) ^ (1 << (bit & 7));
  return out;
};

describe('X-Wing draft vectors (Appendix C)', () => {
  it('the file holds the three vectors of the draft', () => {
    expect(file.vectors).toHaveLength(3);
  });

  file.vectors.forEach((v, i) => {
    it(`vector ${i}: key pair, EncapsulateDerand, Decapsulate`, () => {
      const seed = fromHex(v.seed);
      const { publicKey, secretKey } = xwingKeyPairFromSeed(seed);
      expect(toHex(secretKey)).toBe(v.sk);
      expect(toHex(publicKey)).toBe(v.pk);
      expect(toHex(xwingPublicKey(fromHex(v.sk)))).toBe(v.pk);

      const { sharedSecret, enc } = xwingEncapsulateDerand(fromHex(v.pk), fromHex(v.eseed));
      expect(toHex(enc)).toBe(v.ct);
      expect(toHex(sharedSecret)).toBe(v.ss);
      // With the returned (cached) key and with a fresh array of the same bytes.
      expect(toHex(xwingDecapsulate(fromHex(v.ct), secretKey))).toBe(v.ss);
      expect(toHex(xwingDecapsulate(fromHex(v.ct), fromHex(v.sk)))).toBe(v.ss);
    });

    it(`vector ${i}: X25519 halves`, () => {
      const pkX = xwingX25519PublicKey(fromHex(v.pk));
      expect(toHex(pkX)).toBe(v.pk.slice(-64));
      const skX = xwingX25519SecretKey(fromHex(v.sk));
      expect(skX).toEqual(shake256(fromHex(v.seed), { dkLen: 96 }).subarray(64, 96));
      expect(getProvider().x25519PublicKey(skX)).toEqual(pkX);
    });
  });
});

describe('X-Wing agrees with @noble/post-quantum ml_kem768_x25519', () => {
  it('for random seeds and encapsulation seeds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 64, maxLength: 64 }), (seed, eseed) => {
        const ours = xwingKeyPairFromSeed(seed);
        const theirs = ml_kem768_x25519.keygen(seed);
        expect(ours.publicKey).toEqual(theirs.publicKey);
        expect(ours.secretKey).toEqual(theirs.secretKey);
        const e = xwingEncapsulateDerand(ours.publicKey, eseed);
        const n = ml_kem768_x25519.encapsulate(theirs.publicKey, eseed);
        expect(e.enc).toEqual(n.cipherText);
        expect(e.sharedSecret).toEqual(n.sharedSecret);
        expect(xwingDecapsulate(e.enc, ours.secretKey)).toEqual(e.sharedSecret);
        // A ciphertext made by noble's randomised encapsulation decapsulates the same under both.
        const r = ml_kem768_x25519.encapsulate(theirs.publicKey);
        expect(xwingDecapsulate(r.cipherText, ours.secretKey)).toEqual(r.sharedSecret);
      }),
      { numRuns: 20 },
    );
  });
});

describe('X-Wing API', () => {
  const random = deterministicRandomForTesting('xwing.test');
  const pair = xwingKeyPairFromSeed(random(32));

  it('has the draft lengths', () => {
    expect([XWING_PUBLIC_KEY_LENGTH, XWING_SECRET_KEY_LENGTH, XWING_ENC_LENGTH, XWING_SHARED_SECRET_LENGTH]).toEqual([1216, 32, 1120, 32]);
    const { sharedSecret, enc } = xwingEncapsulate(pair.publicKey, random);
    expect(enc).toHaveLength(1120);
    expect(sharedSecret).toHaveLength(32);
    expect(xwingDecapsulate(enc, pair.secretKey)).toEqual(sharedSecret);
  });

  it('rejects wrong lengths with ArgumentError', () => {
    const pk = pair.publicKey;
    const sk = pair.secretKey;
    const { enc } = xwingEncapsulate(pk, random);
    expect(() => xwingKeyPairFromSeed(new Uint8Array(31))).toThrow(ArgumentError);
    expect(() => xwingKeyPairFromSeed(new Uint8Array(33))).toThrow(ArgumentError);
    expect(() => xwingEncapsulateDerand(pk.subarray(1), new Uint8Array(64))).toThrow(ArgumentError);
    expect(() => xwingEncapsulateDerand(pk, new Uint8Array(63))).toThrow(ArgumentError);
    expect(() => xwingEncapsulate(pk, () => new Uint8Array(32))).toThrow(ArgumentError);
    expect(() => xwingDecapsulate(enc.subarray(1), sk)).toThrow(ArgumentError);
    expect(() => xwingDecapsulate(enc, sk.subarray(1))).toThrow(ArgumentError);
    expect(() => xwingX25519PublicKey(pk.subarray(1))).toThrow(ArgumentError);
    expect(() => xwingX25519SecretKey(new Uint8Array(64))).toThrow(ArgumentError);
    expect(() => xwingDecapsulate('x' as unknown as Uint8Array, sk)).toThrow(ArgumentError);
  });

  it('a low-order X25519 key or ciphertext half is a CryptoError', () => {
    const pk = pair.publicKey.slice();
    pk.fill(0, 1184); // pk_X = 0
    expect(() => xwingEncapsulate(pk, random)).toThrow(CryptoError);
    const { enc } = xwingEncapsulate(pair.publicKey, random);
    const bad = enc.slice();
    bad.fill(0, 1088); // ct_X = 0
    expect(() => xwingDecapsulate(bad, pair.secretKey)).toThrow(CryptoError);
  });

  it('an ML-KEM key failing the FIPS 203 modulus check is a CryptoError', () => {
    const pk = pair.publicKey.slice();
    pk[0] = 0xff; // first 12-bit coefficient becomes 0x?ff | ... >= q = 3329
    pk[1] = (pk[1] as number) | 0x0f;
    expect(() => xwingEncapsulate(pk, random)).toThrow(CryptoError);
  });

  it('decapsulation of a tampered ciphertext gives an unrelated secret (implicit rejection), not an error', () => {
    const { sharedSecret, enc } = xwingEncapsulate(pair.publicKey, random);
    for (const bit of [0, 4000, 8703, 8704 + 5]) {
      const ss = xwingDecapsulate(flip(enc, bit), pair.secretKey);
      expect(ss).toHaveLength(32);
      expect(ss).not.toEqual(sharedSecret);
    }
  });

  it('never serves a stale expansion when the caller reuses or wipes a secret-key array', () => {
    const a = xwingKeyPairFromSeed(random(32));
    const b = xwingKeyPairFromSeed(random(32));
    const encB = xwingEncapsulate(b.publicKey, random);
    const sk = a.secretKey.slice();
    expect(xwingPublicKey(sk)).toEqual(a.publicKey); // cached under `sk` now
    sk.set(b.secretKey); // same array, other key
    expect(xwingPublicKey(sk)).toEqual(b.publicKey);
    expect(xwingDecapsulate(encB.enc, sk)).toEqual(encB.sharedSecret);
    sk.fill(0);
    expect(xwingPublicKey(sk)).toEqual(xwingKeyPairFromSeed(new Uint8Array(32)).publicKey);
  });

  it('xwingX25519SecretKey keeps returning the same array until the caller changes it', () => {
    const { secretKey } = xwingKeyPairFromSeed(random(32));
    const first = xwingX25519SecretKey(secretKey);
    const value = first.slice();
    expect(xwingX25519SecretKey(secretKey)).toBe(first);
    first.fill(0);
    const again = xwingX25519SecretKey(secretKey);
    expect(again).not.toBe(first);
    expect(again).toEqual(value);
  });

  it('does not modify its inputs', () => {
    const seed = random(32);
    const eseed = random(64);
    const copies = [seed.slice(), eseed.slice()];
    const { publicKey, secretKey } = xwingKeyPairFromSeed(seed);
    const pkCopy = publicKey.slice();
    const skCopy = secretKey.slice();
    const { enc } = xwingEncapsulateDerand(publicKey, eseed);
    const encCopy = enc.slice();
    xwingDecapsulate(enc, secretKey);
    xwingX25519PublicKey(publicKey);
    xwingX25519SecretKey(secretKey);
    expect([seed, eseed, publicKey, secretKey, enc]).toEqual([...copies, pkCopy, skCopy, encCopy]);
  });
});

describe('X-Wing as an HPKE KEM (0x647a)', () => {
  const suite = { kem: KemId.XWing, kdf: KdfId.HkdfSha256, aead: HpkeAeadId.ChaCha20Poly1305 } as const;
  const kem = getKem(KemId.XWing);
  const random = deterministicRandomForTesting('xwing.test hpke');
  const info = new TextEncoder().encode('info');
  const aad = new TextEncoder().encode('aad');
  const pt = new TextEncoder().encode('a sealed letter');

  it('has the registered lengths and no Auth mode', () => {
    expect([kem.id, kem.nSecret, kem.nEnc, kem.nPk, kem.nSk]).toEqual([0x647a, 32, 1120, 1216, 32]);
    expect(kem.authEncap).toBeUndefined();
    expect(kem.authDecap).toBeUndefined();
    const r = kem.generateKeyPair(random);
    expect(() => setupAuthS(suite, r.publicKey, info, r.secretKey)).toThrow(ArgumentError);
  });

  it('DeriveKeyPair(ikm) = GenerateKeyPairDerand(SHAKE256(ikm, 32))', () => {
    const ikm = random(45);
    const pair = kem.deriveKeyPair(ikm);
    expect(pair).toEqual(xwingKeyPairFromSeed(shake256(ikm, { dkLen: 32 })));
    expect(kem.publicKeyOf(pair.secretKey)).toEqual(pair.publicKey);
  });

  it("Encap/Decap are X-Wing's, and the HPKE shared secret is X-Wing's ss as is", () => {
    const r = kem.generateKeyPair(random);
    const eseed = random(64);
    const direct = xwingEncapsulateDerand(r.publicKey, eseed);
    const viaKem = kem.encap(r.publicKey, () => eseed.slice());
    expect(viaKem).toEqual(direct);
    expect(kem.decap(direct.enc, r.secretKey)).toEqual(direct.sharedSecret);
    // eseedForTesting reaches the same encapsulation.
    const ctx = setupBaseS(suite, r.publicKey, info, { eseedForTesting: eseed });
    expect(ctx.enc).toEqual(direct.enc);
  });

  it('round trips with sealBase/openBase and with contexts', () => {
    const r = kem.generateKeyPair(random);
    const { enc, ct } = sealBase(suite, r.publicKey, info, aad, pt, { randomForTesting: random });
    expect(enc).toHaveLength(1120);
    expect(openBase(suite, enc, r.secretKey, info, aad, ct)).toEqual(pt);
    const s = setupBaseS(suite, r.publicKey, info);
    const rc = setupBaseR(suite, s.enc, r.secretKey, info);
    for (let i = 0; i < 3; i++) expect(rc.open(aad, s.seal(aad, pt))).toEqual(pt);
    expect(rc.export(info, 42)).toEqual(s.export(info, 42));
  });

  it('a tampered enc or ct gives OpenError', () => {
    const r = kem.generateKeyPair(random);
    const { enc, ct } = sealBase(suite, r.publicKey, info, aad, pt);
    for (const bit of [0, 1234, 8703, 8704, 8959]) {
      expect(() => openBase(suite, flip(enc, bit), r.secretKey, info, aad, ct)).toThrow(OpenError);
    }
    const lowOrder = enc.slice();
    lowOrder.fill(0, 1088);
    expect(() => openBase(suite, lowOrder, r.secretKey, info, aad, ct)).toThrow(OpenError);
    expect(() => openBase(suite, enc.subarray(1), r.secretKey, info, aad, ct)).toThrow(OpenError);
    expect(() => openBase(suite, enc, r.secretKey, info, aad, flip(ct, 3))).toThrow(OpenError);
    expect(openBase(suite, enc, r.secretKey, info, aad, ct)).toEqual(pt);
  });
});
