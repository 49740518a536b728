import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.js';
import { ArgumentError } from '../src/errors.js';
import { HASH_LEN, hkdf, hkdfExpand, hkdfExtract } from '../src/hkdf.js';

const range = (from: number, to: number) => Uint8Array.from({ length: to - from }, (_, i) => from + i);

// RFC 5869 Appendix A.1-A.3 (the SHA-256 cases).
const cases = [
  {
    name: 'A.1 basic',
    ikm: new Uint8Array(22).fill(0x0b),
    salt: range(0x00, 0x0d),
    info: range(0xf0, 0xfa),
    length: 42,
    prk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  },
  {
    name: 'A.2 longer inputs and outputs',
    ikm: range(0x00, 0x50),
    salt: range(0x60, 0xb0),
    info: range(0xb0, 0x100),
    length: 82,
    prk: '06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244',
    okm:
      'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da32' +
      '75600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
  },
  {
    name: 'A.3 zero-length salt and info',
    ikm: new Uint8Array(22).fill(0x0b),
    salt: new Uint8Array(0),
    info: new Uint8Array(0),
    length: 42,
    prk: '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04',
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  },
];

describe('HKDF-SHA-256, RFC 5869 test cases', () => {
  for (const c of cases) {
    it(c.name, () => {
      const prk = hkdfExtract(c.salt, c.ikm);
      expect(toHex(prk)).toBe(c.prk);
      expect(toHex(hkdfExpand(prk, c.info, c.length))).toBe(c.okm);
      expect(toHex(hkdf(c.ikm, c.salt, c.info, c.length))).toBe(c.okm);
    });
  }

  it('an empty salt is HashLen zero bytes (RFC 5869 §2.2)', () => {
    const ikm = fromHex('00112233');
    expect(hkdfExtract(new Uint8Array(0), ikm)).toEqual(hkdfExtract(new Uint8Array(HASH_LEN), ikm));
  });

  it('expand accepts 0..255*HashLen bytes and nothing else', () => {
    const prk = new Uint8Array(32).fill(1);
    expect(hkdfExpand(prk, new Uint8Array(0), 0)).toHaveLength(0);
    expect(hkdfExpand(prk, new Uint8Array(0), 255 * HASH_LEN)).toHaveLength(255 * HASH_LEN);
    for (const bad of [-1, 255 * HASH_LEN + 1, 1.5, Number.NaN]) {
      expect(() => hkdfExpand(prk, new Uint8Array(0), bad)).toThrow(ArgumentError);
    }
  });
});

describe('HKDF-SHA-256 agrees with @noble/hashes', () => {
  it('for random ikm, salt, info and length', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.integer({ min: 0, max: 600 }),
        (ikm, salt, info, length) => {
          const copies = [ikm.slice(), salt.slice(), info.slice()];
          expect(hkdf(ikm, salt, info, length)).toEqual(nobleHkdf(sha256, ikm, salt, info, length));
          expect([ikm, salt, info]).toEqual(copies); // inputs untouched
        },
      ),
      { numRuns: 200 },
    );
  });
});
